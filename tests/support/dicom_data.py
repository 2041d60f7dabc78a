"""DICOM files for the tests: pydicom's own samples and synthetic CT studies.

Everything here is deterministic: the same call writes the same UIDs, so the
same Orthanc identifiers come back on every server and every run.

Run ``python -m tests.support.dicom_data OUT_DIR --slices 100`` to write a
synthetic CT study to OUT_DIR.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    EncapsulatedPDFStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

# pydicom test files that Orthanc 1.10.1 stores with 200, one reason each.
SAMPLE_NAMES = (
    "CT_small.dcm",  # CT, uncompressed 16-bit
    "MR_small.dcm",  # MR, uncompressed 16-bit
    "rtdose.dcm",  # multi-frame (15), implicit VR
    "examples_ybr_color.dcm",  # multi-frame (30) JPEG baseline, YBR
    "SC_rgb_jpeg_dcmtk.dcm",  # single-frame JPEG baseline, colour
    "JPEG2000.dcm",  # JPEG 2000: Orthanc cannot decode it without GDCM
    "examples_rgb_color.dcm",  # uncompressed RGB
    "examples_palette.dcm",  # palette colour
    "SC_rgb_rle_2frame.dcm",  # RLE, two frames
    "test-SR.dcm",  # structured report, no pixels
    "waveform_ecg.dcm",  # waveform, no pixels
)
PDF_FILE_NAME = "encapsulated_pdf.dcm"
DEFAULT_DATA_DIR = Path(tempfile.gettempdir()) / "orthanc-cache-plugin-testdata"

# A one-page PDF, small but well formed enough for a viewer to open.
TINY_PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n"
    b"%%EOF\n"
)


class MissingTestDataError(RuntimeError):
    """A pydicom sample file is not installed locally."""


def sample_files(out_dir: Optional[Path] = None) -> list[Path]:
    """Return real sample files, plus a generated encapsulated PDF.

    :param out_dir: where the PDF is written (a fixed temporary folder if None).
    :raises MissingTestDataError: when pydicom lacks one of the files locally.
    """
    paths = [_pydicom_sample(name) for name in SAMPLE_NAMES]
    target = Path(out_dir or DEFAULT_DATA_DIR)
    paths.append(write_encapsulated_pdf(target / PDF_FILE_NAME))
    return paths


def _pydicom_sample(name: str) -> Path:
    # download=False: the tests must never reach the network for data.
    found = get_testdata_file(name, download=False)
    if not isinstance(found, str):
        raise MissingTestDataError(f"pydicom has no local copy of {name}")
    return Path(found)


def write_encapsulated_pdf(path: Path, seed: int = 0) -> Path:
    """Write an Encapsulated PDF Storage instance holding ``TINY_PDF``."""
    ds = _new_dataset(EncapsulatedPDFStorage, _uid("pdf-sop", seed))
    ds.PatientName = "Pdf^Document"
    ds.PatientID = f"PDF{seed}"
    ds.StudyInstanceUID = _uid("pdf-study", seed)
    ds.SeriesInstanceUID = _uid("pdf-series", seed)
    ds.Modality = "DOC"
    ds.StudyDate = "20240101"
    ds.ContentDate = "20240101"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BurnedInAnnotation = "NO"
    ds.DocumentTitle = "Test document"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = _even(TINY_PDF)
    ds.EncapsulatedDocumentLength = len(TINY_PDF)

    return _save(ds, path)


def generate_ct_study(
    out_dir: Path,
    slices: int,
    rows: int = 512,
    cols: int = 512,
    series: int = 1,
    seed: int = 0,
    noise: bool = False,
) -> list[Path]:
    """Write a synthetic axial CT study and return its files, slice order.

    UIDs derive from ``seed`` only, so equal arguments give equal Orthanc IDs.
    Pixels are uncompressed 16-bit signed values (a disc of soft tissue in air),
    or with ``noise`` random 16-bit values, which no archive can compress.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    study = _study_attributes(seed)
    pixels = _noise(rows, cols, seed) if noise else _phantom(rows, cols, seed)

    paths = []
    for series_number in range(1, series + 1):
        for index in range(slices):
            ds = _ct_slice(study, series_number, index, pixels, seed)
            name = f"ct-s{seed}-se{series_number:02d}-{index + 1:04d}.dcm"
            paths.append(_save(ds, out_dir / name))
    return paths


def generate_test_study(out_dir: Path, seed: int = 0) -> list[Path]:
    """Write the small CT study the tests load: 40 slices of 64x64."""
    return generate_ct_study(out_dir, slices=40, rows=64, cols=64, seed=seed)


def orthanc_id(*uids: str) -> str:
    """Return Orthanc's identifier of a resource from its DICOM identifiers.

    Patient: (PatientID,); study: (PatientID, StudyInstanceUID); series and
    instance add SeriesInstanceUID and SOPInstanceUID. Orthanc hashes them
    joined with "|" with SHA-1, printed as five dash-separated groups.
    """
    digest = hashlib.sha1("|".join(uids).encode()).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


def ct_study_uids(seed: int = 0) -> tuple[str, str]:
    """Return (PatientID, StudyInstanceUID) of ``generate_ct_study(seed=...)``."""
    study = _study_attributes(seed)
    return study["PatientID"], study["StudyInstanceUID"]


# -- building blocks ---------------------------------------------------------


def _uid(kind: str, seed: int, *parts: object) -> str:
    sources = [kind, str(seed)] + [str(part) for part in parts]
    return str(generate_uid(entropy_srcs=sources))


def _new_dataset(sop_class: str, sop_instance: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _even(data: bytes) -> bytes:
    return data if len(data) % 2 == 0 else data + b"\0"


def _study_attributes(seed: int) -> dict[str, str]:
    return {
        "PatientName": f"Synthetic^Ct{seed}",
        "PatientID": f"SYNTH-CT-{seed}",
        "StudyInstanceUID": _uid("ct-study", seed),
        "StudyID": str(1000 + seed),
        "AccessionNumber": f"ACC{seed:06d}",
    }


def _phantom(rows: int, cols: int, seed: int) -> np.ndarray:
    # Air (-1000 HU) around a disc of soft tissue with a little noise.
    rng = np.random.default_rng(seed)
    y, x = np.ogrid[:rows, :cols]
    radius = min(rows, cols) * 0.4
    inside = (y - rows / 2) ** 2 + (x - cols / 2) ** 2 <= radius**2
    hounsfield = np.where(inside, 40, -1000) + rng.integers(-20, 20, (rows, cols))
    return (hounsfield + 1024).astype(np.int16)


def _noise(rows: int, cols: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-32768, 32768, (rows, cols), dtype=np.int16)


def _ct_slice(
    study: dict[str, str],
    series_number: int,
    index: int,
    pixels: np.ndarray,
    seed: int,
) -> Dataset:
    sop = _uid("ct-sop", seed, series_number, index)
    ds = _new_dataset(CTImageStorage, sop)
    for keyword, value in study.items():
        setattr(ds, keyword, value)
    _set_descriptive_tags(ds, series_number, seed)
    _set_geometry(ds, index, pixels.shape)
    _set_pixels(ds, pixels, index)
    return ds


def _set_descriptive_tags(ds: Dataset, series_number: int, seed: int) -> None:
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.StudyDescription = "Synthetic CT"
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID = _uid("ct-series", seed, series_number)
    ds.SeriesNumber = series_number
    ds.SeriesDescription = f"Axial {series_number}"
    ds.Modality = "CT"
    ds.Manufacturer = "orthanc-cache-plugin tests"
    ds.BodyPartExamined = "CHEST"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.KVP = 120
    ds.FrameOfReferenceUID = _uid("ct-frame", seed, series_number)
    ds.PositionReferenceIndicator = ""


def _set_geometry(ds: Dataset, index: int, shape: Sequence[int]) -> None:
    thickness = 1.25
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [-160.0, -160.0, -index * thickness]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceLocation = -index * thickness
    ds.SliceThickness = thickness
    ds.PixelSpacing = [320.0 / shape[0], 320.0 / shape[1]]


def _set_pixels(ds: Dataset, pixels: np.ndarray, index: int) -> None:
    frame = np.roll(pixels, index, axis=1)
    ds.Rows, ds.Columns = frame.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.PixelData = frame.astype("<i2").tobytes()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic CT study.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--cols", type=int, default=512)
    parser.add_argument("--series", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    paths = generate_ct_study(
        args.out_dir, args.slices, args.rows, args.cols, args.series, args.seed
    )
    print(f"wrote {len(paths)} files to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
