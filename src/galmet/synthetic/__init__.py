"""galmet.synthetic: SDSS-like galaxies with known metallicity physics, drawn with GalSim.

The public API (each name imported on first use; GalSim only when rendering)::

    synthesize(out, n, seed)  # a synthetic dataset directory (byte-identical for a seed)
    draw_galaxy(seed, index)  # one galaxy's latent truths and catalogue values, and its rng
    render_galaxy(params, rng, size)  # its RGB cutout

Modules: :mod:`.physics`, :mod:`.render`.
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "synthesize": "galmet.synthetic.render",
    "draw_galaxy": "galmet.synthetic.physics",
    "render_galaxy": "galmet.synthetic.render",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
