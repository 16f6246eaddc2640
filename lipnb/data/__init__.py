"""Datasets: DAVIS 2016/2017 readers and writers, COCO via pycocotools, procedural data,
and the clip datasets used for training. Data code never touches the network."""
