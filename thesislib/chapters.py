"""The book's parts and chapters: one part per source document, one chapter per method.

The CLI (``thesislib list`` / ``thesislib run``), the book's part pages and the tests read
this registry; a chapter is ``built`` when its notebook, configs and library module exist.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from thesislib.paths import project_root

if TYPE_CHECKING:
    from thesislib.params import RunParams


@dataclass(frozen=True)
class Chapter:
    """One method chapter. ``number`` is the chapter number in its source document; ``params``
    names the chapter's parameter dataclass as ``module:Class`` (a
    :class:`~thesislib.params.RunParams` subclass; imported only when asked for)."""

    id: str
    part: str
    number: int
    title: str
    status: Literal["built", "planned"] = "planned"
    params: str = ""

    def params_class(self) -> type[RunParams]:
        """The chapter's parameter dataclass (the one declaration of its notebook parameters)."""
        if not self.params:
            raise KeyError(f"chapter {self.id!r} ({self.status}) declares no parameters yet")
        module, _, name = self.params.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def stem(self) -> str:
        return f"{self.number:02d}_{self.id}"

    def notebook(self, root: Path | None = None) -> Path:
        """The paired ``.ipynb`` (the ``.py`` beside it is the jupytext source of truth)."""
        return _root(root) / "notebooks" / self.part / f"{self.stem}.ipynb"

    def config_dir(self, root: Path | None = None) -> Path:
        return _root(root) / "configs" / self.id

    def scales(self, root: Path | None = None) -> list[str]:
        """Names of the parameter files in ``configs/<chapter>/`` (``smoke``, ``full``, ...)."""
        directory = self.config_dir(root)
        return sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []


@dataclass(frozen=True)
class Part:
    id: str
    title: str
    author: str
    document: str
    venue: str
    seed: str


def _root(root: Path | None) -> Path:
    root = root or project_root()
    if root is None:
        raise RuntimeError("thesislib is not installed from a source checkout: the notebooks and "
                           "configs live in the repository; clone it and install with `make install`")
    return root


PARTS: tuple[Part, ...] = (
    Part("kolesnikov2018", "Weakly-supervised segmentation and unsupervised modeling of natural images",
         "Alexander Kolesnikov", "PhD thesis", "IST Austria, 2018", "001_8a4a889154f5943b.txt"),
    Part("luo2020", "G-softmax: improving intra-class compactness and inter-class separability",
         "Yan Luo, Yongkang Wong, Mohan Kankanhalli, Qi Zhao", "journal paper",
         "IEEE TNNLS 31(2), 2020", "002_dfe63d435dde0677.txt"),
    Part("rebuffi2020", "Influence of the input data on learning deep representations",
         "Sylvestre-Alvise Rebuffi", "PhD thesis", "University of Oxford, 2020",
         "003_b61bc801208353a1.txt"),
    Part("jenni2021", "Learning generalizable visual patterns without human supervision",
         "Simon Jenni", "PhD thesis", "University of Bern, 2021", "004_164dbb59b88e0c81.txt"),
)

CHAPTERS: tuple[Chapter, ...] = (
    Chapter("sec", "kolesnikov2018", 2, "SEC: seed, expand and constrain", status="built",
            params="thesislib.methods.sec.config:SECParams"),
    Chapter("micro_annotation", "kolesnikov2018", 3, "Micro-annotation of distractors", status="built",
            params="thesislib.methods.micro_annotation.config:MicroAnnotationParams"),
    Chapter("pixelcnn_aux", "kolesnikov2018", 4, "PixelCNN with auxiliary variables", status="built",
            params="thesislib.methods.pixelcnn_aux.config:PixelCNNAuxParams"),
    Chapter("pic", "kolesnikov2018", 5, "PIC: probabilistic image colorization", status="built",
            params="thesislib.methods.pic.config:PICParams"),
    Chapter("gsoftmax", "luo2020", 1, "G-softmax", status="built",
            params="thesislib.methods.gsoftmax.config:GSoftmaxParams"),
    Chapter("residual_adapters", "rebuffi2020", 3, "Residual adapters", status="built",
            params="thesislib.methods.residual_adapters.config:ResidualAdaptersParams"),
    Chapter("parallel_adapters", "rebuffi2020", 4, "Parallel adapters", status="built",
            params="thesislib.methods.parallel_adapters.config:ParallelAdaptersParams"),
    Chapter("scarce_annotations", "rebuffi2020", 5, "Semi-supervised learning with scarce annotations",
            status="built", params="thesislib.methods.scarce_annotations.config:ScarceParams"),
    Chapter("autonovel", "rebuffi2020", 6, "AutoNovel: ranking statistics for novel classes", status="built",
            params="thesislib.methods.autonovel.config:AutoNovelParams"),
    Chapter("lsdc", "rebuffi2020", 7, "LSD-C: linearly separable deep clusters", status="built",
            params="thesislib.methods.lsdc.config:LSDCParams"),
    Chapter("normgrad", "rebuffi2020", 8, "NormGrad saliency"),
    Chapter("spotting_artifacts", "jenni2021", 3, "Spotting artifacts: damage and repair", status="built",
            params="thesislib.methods.spotting_artifacts.config:SpottingArtifactsParams"),
    Chapter("lci", "jenni2021", 4, "Limited context inpainting, warping and rotation", status="built",
            params="thesislib.methods.lci.config:LCIParams"),
    Chapter("temporal_transformations", "jenni2021", 5, "Temporal transformations in video"),
    Chapter("multiview_sync", "jenni2021", 6, "Multi-view synchronisation for 3D pose"),
    Chapter("dfgan", "jenni2021", 7, "GAN training with noise (DFGAN)"),
    Chapter("bilevel", "jenni2021", 8, "Deep bilevel learning"),
)


def get_chapter(chapter_id: str) -> Chapter:
    """Look a chapter up by id; an unknown id is an error listing the known ones."""
    for chapter in CHAPTERS:
        if chapter.id == chapter_id:
            return chapter
    known = ", ".join(c.id for c in CHAPTERS)
    raise KeyError(f"unknown chapter {chapter_id!r}; chapters are: {known}")


def get_part(part_id: str) -> Part:
    for part in PARTS:
        if part.id == part_id:
            return part
    raise KeyError(f"unknown part {part_id!r}; parts are: {', '.join(p.id for p in PARTS)}")


def built_chapters() -> list[Chapter]:
    return [c for c in CHAPTERS if c.status == "built"]
