"""pegan: a reproducibility harness for *Positional Encoding as Spatial Inductive Bias in GANs*
(Xu, Wang, Chen, Zhou, Loy; CVPR 2021; arXiv 2012.05217)."""

__version__ = "0.1.0"
