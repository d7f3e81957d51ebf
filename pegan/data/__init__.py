"""Datasets: image folders/zips, the procedural aligned-objects set and scikit-image's bundled data.

* :mod:`pegan.data.images`: reading folders/zips of PNG/JPEG (recursive), square resize;
* :mod:`pegan.data.synthetic`: aligned objects at any resolution, deterministic by seed;
* :mod:`pegan.data.bundled`: the LFW subset faces and the photographs of scikit-image;
* :mod:`pegan.data.prepare`: the ``prepare-data`` command (a zip of RES x RES PNGs);
* :mod:`pegan.data.loader`: training batches addressed by iteration number (exact resume).
"""
