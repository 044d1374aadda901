"""Which survey's images a model takes: compare the survey, layer, bands and format of a set of
images with the imaging a model was trained on (:attr:`galmet.nn.inference.GalmetModel.imaging`).

A field either side does not know (None: a plain image folder, the real SDSS sample, which
record nothing) is not compared. Used by :meth:`galmet.nn.inference.GalmetModel.check_survey`:
another survey's images are refused in one line naming both, unless ``allow_other_survey`` (a
transfer experiment), when every row predicted is flagged ``OTHER_SURVEY``
(:class:`galmet.columns.Flag`). Torch-free.
"""

from __future__ import annotations

from galmet.data.imaging import Imaging

#: The :class:`~galmet.data.imaging.Imaging` fields that say whose images they are, in the order
#: a description names them.
SURVEY_FIELDS = ("survey", "layer", "bands", "format")


def survey_differences(model: Imaging, images: Imaging) -> list[str]:
    """The :data:`SURVEY_FIELDS` whose values both sides know and that differ (empty: the same
    survey's images, as far as is known)."""
    out = []
    for name in SURVEY_FIELDS:
        mine, theirs = getattr(model, name), getattr(images, name)
        if mine is not None and theirs is not None and mine != theirs:
            out.append(name)
    return out


def describe_survey(imaging: Imaging) -> str:
    """``"legacy ls-dr10 grz jpeg"``: the known survey fields, in :data:`SURVEY_FIELDS` order
    (``"unknown survey"`` when none is known)."""
    words = [str(getattr(imaging, name)) for name in SURVEY_FIELDS if getattr(imaging, name) is not None]
    return " ".join(words) or "unknown survey"


def other_survey_description(model: Imaging, images: Imaging, model_name: str) -> str:
    """``"images are legacy ls-dr10 grz jpeg; the model M was trained on sdss gri jpeg images"``:
    what a run on another survey's images records (the table's ``other_survey`` metadata) and
    what its refusal and warning say."""
    return f"images are {describe_survey(images)}; {model_name} was trained on {describe_survey(model)} images"


def other_survey_advice(images: Imaging, differences: list[str], instead: str | None = None) -> str:
    """What to do instead (``instead``; default: use a model trained on such images), or the
    override (the API parameter's name, ``allow_other_survey``, which the command line rewrites
    to its flag)."""
    if instead is None and "survey" in differences:
        instead = f"use a model trained on {images.survey} images"
    elif instead is None:
        instead = "use a model trained on " + " ".join(str(getattr(images, d)) for d in differences) + " images"
    return f"{instead}, or allow_other_survey for a transfer experiment (its rows are flagged)"
