"""The numbers the book fixes, in the one place both ``backend`` and ``nn`` read.

``backend.H`` and ``backend.CE_DELTA`` re-export them.
"""

#: Step of the central difference (the book's ``h = 1e-4``).
H = 1e-4

#: Added inside the log of the cross-entropy (the book's ``delta = 1e-7``), so
#: that a probability of 0 gives a large finite loss instead of ``inf``.
CE_DELTA = 1e-7
