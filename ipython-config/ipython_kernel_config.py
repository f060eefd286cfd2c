# explorer's kernels start importing, in the background, what their notebook's app will import,
# while they wait for its first cell (see explorer/warm.py). An IPython configuration of this
# environment ({sys.prefix}/etc/ipython): `make install` links it there, `pip install .` (Binder)
# copies it there as a data file of the package.
c = get_config()  # noqa: F821 - IPython's configuration loader provides it
c.InteractiveShellApp.extensions.append("explorer.warm")
