//! Decoded images as every stage sees them: a packed buffer with its layout and sample depth.
//!
//! A leaf module: decoding, colour, resizing, encoding and the HEIF and AVIF codecs all pass
//! [`Pixels`] to each other, and none of them has to import another stage for the type.

/// Channel layout of an 8-bit pixel buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Grey.
    L,
    /// Grey + alpha.
    La,
    /// RGB.
    Rgb,
    /// RGB + alpha.
    Rgba,
}

impl Layout {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            Layout::L => 1,
            Layout::La => 2,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }

    /// Returns true if and only if the layout carries alpha.
    pub fn has_alpha(self) -> bool {
        matches!(self, Layout::La | Layout::Rgba)
    }
}

/// Bits per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// One byte per sample.
    Eight,
    /// Two bytes per sample, native-endian `u16` (16-bit PNG and TIFF sources): kept through
    /// the resize, and written as 16 bits where the output format holds them (PNG, TIFF).
    Sixteen,
}

impl Depth {
    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            Depth::Eight => 1,
            Depth::Sixteen => 2,
        }
    }
}

/// A tightly packed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    /// Row-major samples, `width * height * channels` samples of `depth`.
    pub data: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Channel layout.
    pub layout: Layout,
    /// Bits per sample.
    pub depth: Depth,
}

impl Pixels {
    /// Returns true if and only if every pixel is fully opaque: no alpha channel, or an 8-bit
    /// one that is 255 everywhere (16-bit alpha is not looked at, and counts as not opaque).
    pub(crate) fn is_opaque(&self) -> bool {
        let channels = self.layout.channels();
        match (self.layout.has_alpha(), self.depth) {
            (false, _) => true,
            (true, Depth::Eight) => self
                .data
                .iter()
                .skip(channels - 1)
                .step_by(channels)
                .all(|&a| a == 255),
            (true, Depth::Sixteen) => false,
        }
    }

    /// The image without its alpha channel if every pixel is fully opaque ([`Self::is_opaque`]),
    /// else unchanged: an alpha channel that hides nothing only costs bytes and time.
    pub(crate) fn without_opaque_alpha(self) -> Pixels {
        if !self.layout.has_alpha() || !self.is_opaque() {
            return self;
        }
        let (layout, keep) = match self.layout {
            Layout::Rgba => (Layout::Rgb, 3),
            _ => (Layout::L, 1),
        };
        Pixels {
            data: self
                .data
                .chunks_exact(keep + 1)
                .flat_map(|p| p[..keep].iter().copied())
                .collect(),
            layout,
            ..self
        }
    }

    /// The samples of an 8-bit image as RGBA, 4 bytes a pixel (grey spread to R, G and B;
    /// opaque where there is no alpha).
    pub(crate) fn rgba_samples(&self) -> Vec<u8> {
        debug_assert_eq!(self.depth, Depth::Eight);
        match self.layout {
            Layout::Rgba => self.data.clone(),
            Layout::Rgb => self
                .data
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            Layout::L => self.data.iter().flat_map(|&g| [g, g, g, 255]).collect(),
            Layout::La => self
                .data
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
        }
    }

    /// The same image with 8 bits per sample (rounded), for the stages and formats that only
    /// take 8: a no-op for 8-bit images.
    pub fn into_8bit(self) -> Pixels {
        match self.depth {
            Depth::Eight => self,
            Depth::Sixteen => Pixels {
                data: self
                    .data
                    .chunks_exact(2)
                    .map(|b| to_8bit(u16::from_ne_bytes([b[0], b[1]])))
                    .collect(),
                depth: Depth::Eight,
                ..self
            },
        }
    }
}

/// A 16-bit sample as 8 bits, rounded to nearest: the one narrowing rule every decoder and
/// [`Pixels::into_8bit`] use.
pub(crate) fn to_8bit(v: u16) -> u8 {
    u8::try_from((u32::from(v) * 255 + 32_767) / 65_535).expect("at most 255")
}
