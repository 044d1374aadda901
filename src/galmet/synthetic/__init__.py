"""galmet.synthetic: galaxies with known metallicity physics, drawn with GalSim as SDSS, the
Legacy Surveys or PS1 image them.

The public API (each name imported on first use; GalSim only when rendering)::

    synthesize(out, n, seed, survey="sdss", format="jpeg")  # a synthetic dataset directory
    draw_galaxy(seed, index)  # one galaxy's latent truths and catalogue values, and its rng
    render_galaxy(params, rng, size, look)  # its colour cutout (or flux cube)
    survey_look("legacy")  # a survey's bands, seeing, noise and rendering

Modules: :mod:`.physics`, :mod:`.looks`, :mod:`.render`.
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "synthesize": "galmet.synthetic.render",
    "draw_galaxy": "galmet.synthetic.physics",
    "render_galaxy": "galmet.synthetic.render",
    "survey_look": "galmet.synthetic.looks",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
