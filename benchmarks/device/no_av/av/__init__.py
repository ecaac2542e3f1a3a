"""Stand-in for PyAV on the lent GPU machine, where PyAV (a 36 MB wheel) does not fit in what
travels (docs/device.md). ``facedancer_torch.io`` imports ``av`` at module level, so without a
module of that name nothing of the swap pipeline imports, not even image swaps. This one imports
and lets images, frames held in memory and the live loop run; any use of PyAV itself (decoding
or encoding a video file) raises ModuleNotFoundError. Only on sys.path when ``import av`` fails
(benchmarks/device/session.sh), or here to rehearse that machine.
"""

STUB = True


class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return cls

    def __call__(cls, *args, **kwargs):
        raise ModuleNotFoundError("PyAV is not installed on this machine (benchmarks/device/"
                                  "no_av stands in for it): video files cannot be read or "
                                  "written here", name="av")


class _Missing(Exception, metaclass=_Meta):
    """Any attribute of the stub: usable in ``except`` clauses, raises when called."""


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Missing
