"""The numbers the book fixes, in the one place both ``backend`` and ``nn`` read.

``backend.H`` and ``backend.CE_DELTA`` re-export them.
"""

#: Step of the central difference (the book's ``h = 1e-4``).
H = 1e-4

#: Added inside the log of the cross-entropy (the book's ``delta = 1e-7``), so
#: that a probability of 0 gives a large finite loss instead of ``inf``.
CE_DELTA = 1e-7

#: Added to the root in the denominators of AdaGrad, RMSprop and Adam (the
#: book's ``1e-7``), so that a parameter with no gradient yet is not divided by 0.
OPT_EPS = 1e-7

#: Added to the variance in Batch Normalization (the book's ``10e-7``, i.e. 1e-6).
BN_EPS = 10e-7
