"""Helpers shared by the tests: a real Orthanc process and DICOM test data."""
