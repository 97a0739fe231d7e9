# Copyright (c) mmitpn contributors. All rights reserved.
from .clip_teacher import CLIPTeacher, build_vision_tower

__all__ = ['CLIPTeacher', 'build_vision_tower']
