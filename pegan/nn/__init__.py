"""Building blocks of the generators (pure PyTorch, no custom CUDA ops).

* :mod:`pegan.nn.equalized`   equalised-learning-rate linear / conv layers, PixelNorm
* :mod:`pegan.nn.activation`  StyleGAN2's bias + leaky ReLU (x sqrt 2)
* :mod:`pegan.nn.upfirdn`     upfirdn2d, blur and FIR up-sampling
* :mod:`pegan.nn.padding`     the padding switch of all four families (conv padding, the
                              no-padding resize and head size, SinGAN's padding modes)
* :mod:`pegan.nn.upsample`    bilinear x2 up-sampling of the ablations
* :mod:`pegan.nn.noise`       noise injection
* :mod:`pegan.nn.modulated`   modulated conv, style conv and to-RGB layers
* :mod:`pegan.nn.mbstd`       minibatch standard deviation
* :mod:`pegan.nn.resblock`    the discriminator's conv layers and residual blocks
"""

from pegan.nn.activation import BiasLeakyReLU, bias_leaky_relu
from pegan.nn.equalized import EqualConv2d, EqualLinear, PixelNorm
from pegan.nn.mbstd import MinibatchStddev
from pegan.nn.modulated import ModulatedConv2d, StyleConv, ToRGB
from pegan.nn.noise import NoiseInjection
from pegan.nn.padding import conv_padding
from pegan.nn.resblock import ConvLayer, ResBlock
from pegan.nn.upfirdn import Blur, UpsampleFIR, make_kernel, upfirdn2d

__all__ = [
    "BiasLeakyReLU", "Blur", "ConvLayer", "EqualConv2d", "EqualLinear", "MinibatchStddev",
    "ModulatedConv2d", "NoiseInjection", "PixelNorm", "ResBlock", "StyleConv", "ToRGB",
    "UpsampleFIR", "bias_leaky_relu", "conv_padding", "make_kernel", "upfirdn2d",
]
