"""Label tables shared by the feed generator, the encoders and the dataset loaders.

Class ids 0-12 follow CholecSeg8k's class order; 13+ are this project's additions (20-21 are
Endoscapes' cystic plate and hepatocystic triangle). New classes are only ever appended: the
copilot, the synthetic feeds and shipped models depend on the ids.
One global table serves both scenarios so that one model can be trained on both.
"""

from __future__ import annotations

#: Segmentation classes: id -> name. 0-12 as in CholecSeg8k.
CLASSES: tuple[str, ...] = (
    "background",  # 0 black background / outside the field of view
    "abdominal_wall",  # 1
    "liver",  # 2
    "gi_tract",  # 3 (bowel wall / mucosa in the bowel survey)
    "fat",  # 4
    "grasper",  # 5
    "connective_tissue",  # 6
    "blood",  # 7
    "cystic_duct",  # 8
    "l_hook",  # 9 L-hook electrocautery
    "gallbladder",  # 10
    "hepatic_vein",  # 11
    "liver_ligament",  # 12
    "cystic_artery",  # 13
    "common_bile_duct",  # 14
    "clip",  # 15
    "large_vessel",  # 16 unexpected large (pulsatile) vessel
    "lumen",  # 17 dark bowel lumen
    "clip_applier",  # 18
    "scissors",  # 19
    "cystic_plate",  # 20 Endoscapes: liver bed of the gallbladder (CVS criterion 3)
    "hepatocystic_triangle",  # 21 Endoscapes: dissected hepatocystic (Calot's) triangle
)
CLASS_ID: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}
IGNORE_INDEX = 255
INSTRUMENT_CLASSES: tuple[str, ...] = ("grasper", "l_hook", "clip_applier", "scissors")

#: Cholec80 phases, in the order of a standard laparoscopic cholecystectomy.
PHASES: tuple[str, ...] = (
    "Preparation",
    "CalotTriangleDissection",
    "ClippingCutting",
    "GallbladderDissection",
    "GallbladderPackaging",
    "CleaningCoagulation",
    "GallbladderRetraction",
)

#: Cholec80 tools (tool presence head), in Cholec80's column order.
TOOLS: tuple[str, ...] = (
    "Grasper",
    "Bipolar",
    "Hook",
    "Scissors",
    "Clipper",
    "Irrigator",
    "SpecimenBag",
)

#: Critical view of safety criteria (Strasberg), as in Endoscapes C1-C3.
CVS_CRITERIA: tuple[str, ...] = (
    "two_structures",  # C1: two and only two structures enter the gallbladder
    "hepatocystic_triangle_cleared",  # C2
    "cystic_plate_exposed",  # C3: lower third of the gallbladder off the liver bed
)

#: Bowel segments in anatomical (lumen) order; region head of the encoder.
SEGMENTS: tuple[str, ...] = (
    "duodenum_d1",
    "duodenum_d2",
    "duodenum_d3",
    "duodenum_d4",
    "jejunum",
    "ileum",
    "caecum",
    "ascending_colon",
    "transverse_colon",
    "descending_colon",
    "sigmoid_colon",
    "rectum",
)

#: Region head classes: "abdominal_cavity" for laparoscopic views, plus the segments,
#: plus "out_of_body" (camera outside the patient).
REGIONS: tuple[str, ...] = ("abdominal_cavity", *SEGMENTS, "out_of_body")

#: Colours (RGB, 0-255) used to draw classes on the overlay and contact sheets.
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    "background": (0, 0, 0),
    "abdominal_wall": (210, 140, 140),
    "liver": (255, 114, 114),
    "gi_tract": (231, 70, 156),
    "fat": (186, 183, 75),
    "grasper": (170, 255, 0),
    "connective_tissue": (255, 85, 0),
    "blood": (255, 0, 0),
    "cystic_duct": (255, 255, 0),
    "l_hook": (169, 255, 184),
    "gallbladder": (255, 160, 165),
    "hepatic_vein": (0, 50, 128),
    "liver_ligament": (111, 74, 0),
    "cystic_artery": (200, 0, 60),
    "common_bile_duct": (0, 200, 120),
    "clip": (200, 200, 255),
    "large_vessel": (120, 0, 200),
    "lumen": (30, 30, 60),
    "clip_applier": (0, 255, 255),
    "scissors": (255, 0, 255),
    "cystic_plate": (140, 90, 40),
    "hepatocystic_triangle": (255, 200, 0),
}
