# make demo        pretrain a small iTPN on CPU on generated centred objects,
#                  draw and score held-out reconstructions, probe its features
#                  (tools/misc/run_demo.sh; work_dirs/demo_objects)
# make test        run the test suite
# make lint        flake8, isort and yapf checks
# make docs        build the documentation site (warnings are errors) and
#                  check every internal link and image
# make demo-photos pretrain on crops of scikit-image's photographs (the
#                  checkpoint the three demos below start from; work_dirs/demo)
# make demo-cls    fine-tune and linear-probe it on Fashion-MNIST
# make demo-det    Mask R-CNN from it on generated COCO shapes
# make demo-seg    UperNet from it on generated shapes masks
# make summary     build every HiViT arch and print parameters, MACs, a forward
# make test-onedl  install the maintained OpenMMLab fork into $(ONEDL_VENV)
#                  (tools/misc/install_env.sh --stack onedl) and run the suite there
# All install the stack into $(VENV) first when it is missing or stale; with a
# visible NVIDIA GPU, mmcv gets CUDA ops (tools/misc/install_env.sh --help).
# PYTHON=python3.12 make install: the interpreter that creates a new $(VENV).
VENV ?= .venv
ONEDL_VENV ?= .venv-onedl
BASE_PYTHON := $(if $(filter environment,$(origin PYTHON)),$(PYTHON),python3)
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.mmitpn-installed
ONEDL_STAMP := $(ONEDL_VENV)/.mmitpn-installed

PHOTO_CONFIG := configs/pretrain/demo/itpn-pixel_hivit-demo_1xb32-coslr-40e_skimage-96px.py
PHOTO_DIR := work_dirs/demo
PHOTO_DATA := data/skimage_unlabeled
PHOTO_IMAGES := $(addprefix $(PHOTO_DATA)/,astronaut_00000.png \
	chelsea_00001.png coffee_00002.png rocket_00003.png)

CLS_FINETUNE := configs/cls/demo/hivit-demo_skimage-pre_1xb64-coslr-6e_fashion-mnist-64px.py
CLS_LINEAR := configs/cls/demo/hivit-demo_skimage-pre_linear_1xb256-coslr-10e_fashion-mnist-64px.py
DET_DEMO := configs/det/demo/hivit-demo_skimage-pre_mask-rcnn_1xb4-6e_shapes-coco-128px.py
SEG_DEMO := configs/seg/demo/hivit-demo_skimage-pre_upernet_1xb8-1k_shapes-seg-128px.py

.PHONY: install test lint docs demo demo-photos demo-cls demo-det demo-seg \
	summary test-onedl

# The stamp holds the install's wall time in seconds (make demo reports it).
$(STAMP): setup.py requirements/build.txt requirements/mminstall.txt \
		requirements/runtime.txt requirements/optional.txt \
		requirements/tests.txt requirements/docs.txt \
		requirements/cuda.txt tools/misc/install_env.sh
	start=$$(date +%s) && PYTHON=$(BASE_PYTHON) tools/misc/install_env.sh $(VENV) && \
		echo $$(( $$(date +%s) - start )) > $@

install: $(STAMP)

$(ONEDL_STAMP): setup.py requirements/build.txt requirements/onedl.txt \
		requirements/runtime.txt requirements/optional.txt \
		requirements/tests.txt requirements/docs.txt \
		requirements/cuda.txt tools/misc/install_env.sh
	start=$$(date +%s) && PYTHON=$(BASE_PYTHON) \
		tools/misc/install_env.sh --stack onedl $(ONEDL_VENV) && \
		echo $$(( $$(date +%s) - start )) > $@

test-onedl: $(ONEDL_STAMP)
	$(ONEDL_VENV)/bin/python -m pytest -n auto --dist loadfile

test: install
	$(PYTHON) -m pytest -n auto --dist loadfile

lint: install
	$(VENV)/bin/flake8 mmitpn tools tests projects .dev_scripts setup.py conftest.py
	$(VENV)/bin/isort --check-only --diff mmitpn tools tests projects .dev_scripts setup.py conftest.py
	$(VENV)/bin/yapf --diff --recursive mmitpn tools tests projects .dev_scripts setup.py conftest.py

docs: install
	rm -rf docs/_build
	$(PYTHON) -m sphinx -W --keep-going -b html docs docs/_build/html
	$(PYTHON) .dev_scripts/check_docs_links.py

demo: install
	PYTHON=$(PYTHON) INSTALL_STAMP=$(STAMP) tools/misc/run_demo.sh

demo-photos: install
	$(PYTHON) tools/dataset_converters/prepare_skimage_images.py $(PHOTO_DATA)
	$(PYTHON) tools/train.py $(PHOTO_CONFIG) --work-dir $(PHOTO_DIR)
	$(PYTHON) tools/visualization/vis_reconstruction.py $(PHOTO_CONFIG) \
		"$$(cat $(PHOTO_DIR)/last_checkpoint)" $(PHOTO_IMAGES) \
		--out-dir $(PHOTO_DIR)/reconstructions

demo-cls: install
	test -f $(PHOTO_DIR)/epoch_40.pth || $(MAKE) demo-photos
	$(PYTHON) tools/train.py $(CLS_FINETUNE) --work-dir work_dirs/demo_cls_finetune
	$(PYTHON) tools/test.py $(CLS_FINETUNE) work_dirs/demo_cls_finetune/epoch_6.pth
	$(PYTHON) tools/train.py $(CLS_LINEAR) --work-dir work_dirs/demo_cls_linear
	$(PYTHON) tools/test.py $(CLS_LINEAR) work_dirs/demo_cls_linear/epoch_10.pth

demo-det: install
	test -f $(PHOTO_DIR)/epoch_40.pth || $(MAKE) demo-photos
	$(PYTHON) tools/dataset_converters/make_shapes_coco.py data/shapes_coco
	$(PYTHON) tools/train.py $(DET_DEMO) --work-dir work_dirs/demo_det
	$(PYTHON) tools/test.py $(DET_DEMO) work_dirs/demo_det/epoch_6.pth

demo-seg: install
	test -f $(PHOTO_DIR)/epoch_40.pth || $(MAKE) demo-photos
	$(PYTHON) tools/dataset_converters/make_shapes_seg.py data/shapes_seg
	$(PYTHON) tools/train.py $(SEG_DEMO) --work-dir work_dirs/demo_seg
	$(PYTHON) tools/test.py $(SEG_DEMO) work_dirs/demo_seg/iter_1000.pth

summary: install
	$(PYTHON) tools/analysis_tools/hivit_summary.py
