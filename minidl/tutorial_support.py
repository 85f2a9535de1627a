"""What every tutorial needs around its lessons: quick mode, an output folder,
and figures that show up where the reader is.

    from minidl.tutorial_support import Tutorial
    tutorial = Tutorial("05")          # MINIDL_QUICK, MINIDL_TUTORIAL_OUT, the backend
    fig, ax = plt.subplots()
    ...
    tutorial.show(fig, "curves.png")   # saved as 05_curves.png; inline in Jupyter
    tutorial.show(viz.plot_filters(w, tutorial.path("filters.png")))   # a PNG viz wrote

Run as a script, a tutorial draws with matplotlib's Agg backend (no windows
open) and every figure is saved to `$MINIDL_TUTORIAL_OUT` (default
`tutorial_outputs/`). Run in Jupyter (an IPython kernel), the notebook's own
backend is left alone, and each figure is saved *and* displayed inline below
the cell that made it.
"""
import os
import sys


def in_notebook():
    """True inside a Jupyter kernel (an IPython shell started by ipykernel),
    False in a script or a terminal IPython."""
    ipython = sys.modules.get("IPython")       # a kernel has imported it already
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    if shell is None:
        return False
    return type(shell).__name__ == "ZMQInteractiveShell" or "IPKernelApp" in getattr(shell, "config", {})


def quick_mode():
    """True when MINIDL_QUICK=1: small shapes and few steps, for tests and a first read."""
    return os.environ.get("MINIDL_QUICK") == "1"


class Tutorial:
    """One tutorial's settings: `quick`, `out_dir`, and `path`/`show` for its pictures.

    `prefix` (the tutorial's number, e.g. "05") starts every file name, so the
    pictures of all tutorials can share one folder.
    """

    def __init__(self, prefix):
        self.prefix = str(prefix)
        self.quick = quick_mode()
        self.notebook = in_notebook()
        self.out_dir = os.environ.get("MINIDL_TUTORIAL_OUT", "tutorial_outputs")
        os.makedirs(self.out_dir, exist_ok=True)
        if not self.notebook and "MPLBACKEND" not in os.environ:
            import matplotlib
            matplotlib.use("Agg")              # a script saves its figures; it opens no windows

    def path(self, name):
        """Where the picture `name` goes: OUT_DIR/PREFIX_name."""
        return os.path.join(self.out_dir, f"{self.prefix}_{name}")

    def show(self, figure_or_path, name=None, dpi=110):
        """Save a matplotlib figure as PREFIX_`name` (or take the path of a PNG
        already written, e.g. by `minidl.viz`), display it inline in a notebook,
        print where it is in a script, and return the path."""
        if isinstance(figure_or_path, (str, os.PathLike)):
            path = os.fspath(figure_or_path)
            if self.notebook:
                from IPython.display import Image, display
                display(Image(filename=path))
            else:
                print("saved", path)
            return path
        if name is None:
            raise ValueError("Tutorial.show: a figure needs a file name, e.g. show(fig, 'curves.png')")
        figure = figure_or_path
        path = self.path(name)
        figure.savefig(path, dpi=dpi, bbox_inches="tight")
        if self.notebook:
            from IPython.display import display
            display(figure)
        else:
            print("saved", path)
        import matplotlib.pyplot as plt
        plt.close(figure)                      # shown once, and no pile-up of open figures
        return path
