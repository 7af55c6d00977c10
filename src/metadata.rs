//! Metadata (EXIF, XMP, ICC) carried from input to output (in progress).
