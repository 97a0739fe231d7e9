# Copyright (c) mmitpn contributors. All rights reserved.
from .clip_teacher import CLIPTeacher

__all__ = ['CLIPTeacher']
