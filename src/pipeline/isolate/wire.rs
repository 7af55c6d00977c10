//! The decoder process's protocol: small length-prefixed frames on its stdin and stdout, plus
//! the two bulk payloads (the input file, the decoded pixels) written raw after the frame that
//! announces their length, so neither is copied into a frame buffer.
//!
//! ```text
//! parent → child   Probe  {format, max_pixels, name, input length} + input bytes
//!                  Decode {min_size, threads, fail_on}        (only after an Ok header)
//! child → parent   Hello  {Ok | sandbox error}                (once, at start)
//!                  Header {Ok(header, coefficient bytes) | Err(job error)}
//!                  Pixels {Ok(width, height, layout, depth, damage, length) | Err} + samples
//! ```
//!
//! Both ends are the same binary, so integers are little-endian and samples native-endian. The
//! parent trusts nothing the child sends: every length is checked before it is allocated.

use std::io::{self, Read, Write};

use crate::config::FailOn;
use crate::error::JobError;
use crate::format::Format;
use crate::metadata::{Resolution, ResolutionUnit};
use crate::pipeline::decode::Header;
use crate::pipeline::pixels::{Depth, Layout, Pixels};

/// The longest control frame either side accepts (metadata blocks can be megabytes).
const MAX_FRAME: usize = 256 << 20;

/// A frame body being built.
#[derive(Default)]
pub(super) struct Frame(Vec<u8>);

impl Frame {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn f64(&mut self, v: f64) -> &mut Self {
        self.u64(v.to_bits())
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u64(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }
    fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(v) => self.u8(1).bytes(v),
            None => self.u8(0),
        }
    }

    /// Sends the frame: its length, then its body.
    pub(super) fn send(&self, w: &mut impl Write) -> io::Result<()> {
        let len = u32::try_from(self.0.len()).map_err(|_| bad("frame too long"))?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&self.0)
    }
}

/// A received frame body, read field by field.
pub(super) struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("frame too short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn f64(&mut self) -> io::Result<f64> {
        self.u64().map(f64::from_bits)
    }
    fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = usize::try_from(self.u64()?).map_err(|_| bad("length"))?;
        self.take(n)
    }
    fn opt_bytes(&mut self) -> io::Result<Option<Vec<u8>>> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(self.bytes()?.to_vec()),
        })
    }
    fn string(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad("text is not UTF-8"))
    }
    fn opt_string(&mut self) -> io::Result<Option<String>> {
        self.opt_bytes()?
            .map(|b| String::from_utf8(b).map_err(|_| bad("text is not UTF-8")))
            .transpose()
    }
}

/// Reads one frame into `buf` and returns its fields.
pub(super) fn receive<'b>(r: &mut impl Read, buf: &'b mut Vec<u8>) -> io::Result<Fields<'b>> {
    let mut len = [0; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(bad("frame too long"));
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf)?;
    Ok(Fields(buf))
}

/// Reads a bulk payload of `len` bytes into `buf` (reused, so its allocation is kept).
pub(super) fn receive_bulk(r: &mut impl Read, len: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    let len = usize::try_from(len).map_err(|_| bad("payload too long"))?;
    buf.clear();
    buf.try_reserve_exact(len)
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "payload"))?;
    let got = r.take(len as u64).read_to_end(buf)?;
    if got == len {
        Ok(())
    } else {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}

/// A protocol violation: the other side is not the program it should be.
pub(super) fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// What the parent asks for.
#[derive(Debug)]
pub(super) enum Request {
    /// Read this file's header (its bytes follow the frame) and keep its decoder.
    Probe {
        format: Format,
        max_pixels: u64,
        /// The file's name, for the debug-build fault triggers only.
        name: String,
        len: u64,
    },
    /// Decode the file last probed.
    Decode {
        min_size: Option<(f64, f64)>,
        threads: usize,
        fail_on: FailOn,
    },
}

const FAIL_ON: [FailOn; 4] = [
    FailOn::None,
    FailOn::Truncated,
    FailOn::Error,
    FailOn::Warning,
];

impl Request {
    pub(super) fn frame(&self) -> Frame {
        let mut f = Frame::default();
        match self {
            Request::Probe {
                format,
                max_pixels,
                name,
                len,
            } => {
                let index = Format::ALL.iter().position(|f| f == format);
                f.u8(1)
                    .u8(u8::try_from(index.expect("in ALL")).expect("few formats"))
                    .u64(*max_pixels)
                    .bytes(name.as_bytes())
                    .u64(*len);
            }
            Request::Decode {
                min_size,
                threads,
                fail_on,
            } => {
                f.u8(2);
                match min_size {
                    Some((w, h)) => f.u8(1).f64(*w).f64(*h),
                    None => f.u8(0),
                };
                let level = FAIL_ON.iter().position(|l| l == fail_on).expect("listed");
                f.u32(u32::try_from(*threads).unwrap_or(u32::MAX))
                    .u8(u8::try_from(level).expect("four levels"));
            }
        }
        f
    }

    pub(super) fn parse(mut f: Fields<'_>) -> io::Result<Request> {
        match f.u8()? {
            1 => Ok(Request::Probe {
                format: *Format::ALL
                    .get(usize::from(f.u8()?))
                    .ok_or_else(|| bad("format"))?,
                max_pixels: f.u64()?,
                name: f.string()?,
                len: f.u64()?,
            }),
            2 => Ok(Request::Decode {
                min_size: match f.u8()? {
                    0 => None,
                    _ => Some((f.f64()?, f.f64()?)),
                },
                threads: f.u32()? as usize,
                fail_on: *FAIL_ON
                    .get(usize::from(f.u8()?))
                    .ok_or_else(|| bad("fail-on level"))?,
            }),
            _ => Err(bad("unknown request")),
        }
    }
}

/// The child's first frame: whether it is confined and ready.
pub(super) fn hello(sandbox: Result<(), String>) -> Frame {
    let mut f = Frame::default();
    match sandbox {
        Ok(()) => f.u8(1),
        Err(e) => f.u8(0).bytes(e.as_bytes()),
    };
    f
}

/// Parses the child's first frame: `Err` with its words when it could not confine itself.
pub(super) fn parse_hello(mut f: Fields<'_>) -> io::Result<Result<(), String>> {
    Ok(match f.u8()? {
        1 => Ok(()),
        _ => Err(f.string()?),
    })
}

/// A job error as data. Decoders produce only these kinds; any other becomes a decode error
/// with the same words.
fn put_error(f: &mut Frame, e: &JobError) {
    f.u8(0);
    match e {
        JobError::Decode { format, message } => {
            f.u8(1).bytes(format.as_bytes()).bytes(message.as_bytes())
        }
        JobError::Unsupported(m) => f.u8(2).bytes(m.as_bytes()),
        JobError::Unrecognised(m) => f.u8(3).bytes(m.as_bytes()),
        JobError::TooLarge {
            width,
            height,
            pixels,
            limit,
        } => f.u8(4).u32(*width).u32(*height).u64(*pixels).u64(*limit),
        JobError::Panicked(m) => f.u8(5).bytes(m.as_bytes()),
        other => f.u8(1).bytes(b"image").bytes(other.to_string().as_bytes()),
    };
}

fn get_error(f: &mut Fields<'_>) -> io::Result<JobError> {
    Ok(match f.u8()? {
        1 => JobError::Decode {
            format: format_name(&f.string()?),
            message: f.string()?,
        },
        2 => JobError::Unsupported(f.string()?),
        3 => JobError::Unrecognised(f.string()?),
        4 => JobError::TooLarge {
            width: f.u32()?,
            height: f.u32()?,
            pixels: f.u64()?,
            limit: f.u64()?,
        },
        5 => JobError::Panicked(f.string()?),
        _ => return Err(bad("error kind")),
    })
}

/// The static name a decode error carries, from the words the child sent.
fn format_name(name: &str) -> &'static str {
    Format::ALL
        .iter()
        .map(|f| f.display_name())
        .chain(["HEIF", "image"])
        .find(|n| *n == name)
        .unwrap_or("image")
}

/// The reply to a probe: the header the parent plans from, and the progressive-JPEG coefficient
/// bytes the child's decoder will hold (for the memory budget).
pub(super) fn header_reply(r: &Result<(&Header, u64), JobError>) -> Frame {
    let mut f = Frame::default();
    match r {
        Err(e) => put_error(&mut f, e),
        Ok((h, coefficients)) => {
            f.u8(1)
                .u32(h.width)
                .u32(h.height)
                .u8(h.orientation)
                .opt_bytes(h.icc.as_deref())
                .opt_bytes(h.exif.as_deref())
                .opt_bytes(h.xmp.as_deref())
                .u8(h.bytes_per_pixel)
                .u64(*coefficients);
            match h.resolution {
                Some(r) => f.u8(1).f64(r.x).f64(r.y).u8(match r.unit {
                    ResolutionUnit::Inch => 0,
                    ResolutionUnit::Centimetre => 1,
                }),
                None => f.u8(0),
            };
        }
    }
    f
}

/// Parses a probe reply. The header has no decoder state: that stays in the child.
pub(super) fn parse_header(mut f: Fields<'_>) -> io::Result<Result<(Header, u64), JobError>> {
    if f.u8()? == 0 {
        return get_error(&mut f).map(Err);
    }
    let mut header = Header {
        width: f.u32()?,
        height: f.u32()?,
        orientation: f.u8()?,
        icc: f.opt_bytes()?,
        cmyk_icc: None,
        exif: f.opt_bytes()?,
        xmp: f.opt_bytes()?,
        resolution: None,
        bytes_per_pixel: f.u8()?,
        jpeg: None,
    };
    let coefficients = f.u64()?;
    if f.u8()? == 1 {
        header.resolution = Some(Resolution {
            x: f.f64()?,
            y: f.f64()?,
            unit: match f.u8()? {
                0 => ResolutionUnit::Inch,
                _ => ResolutionUnit::Centimetre,
            },
        });
    }
    Ok(Ok((header, coefficients)))
}

const LAYOUTS: [Layout; 4] = [Layout::L, Layout::La, Layout::Rgb, Layout::Rgba];
const DEPTHS: [Depth; 2] = [Depth::Eight, Depth::Sixteen];

/// The frame announcing decoded pixels (their samples follow it) or the decode's error.
pub(super) fn pixels_reply(r: &Result<(&Pixels, Option<String>), JobError>) -> Frame {
    let mut f = Frame::default();
    match r {
        Err(e) => put_error(&mut f, e),
        Ok((px, damage)) => {
            let layout = LAYOUTS
                .iter()
                .position(|l| *l == px.layout)
                .expect("listed");
            let depth = DEPTHS.iter().position(|d| *d == px.depth).expect("listed");
            f.u8(1)
                .u32(px.width)
                .u32(px.height)
                .u8(u8::try_from(layout).expect("four"))
                .u8(u8::try_from(depth).expect("two"))
                .opt_bytes(damage.as_deref().map(str::as_bytes))
                .u64(px.data.len() as u64);
        }
    }
    f
}

/// Pixels announced, before their samples are read.
pub(super) struct Announced {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) layout: Layout,
    pub(super) depth: Depth,
    pub(super) damage: Option<String>,
    pub(super) len: u64,
}

/// Parses a decode reply; a sample count that does not match the size is refused, so that a
/// child cannot make the parent allocate more than the image it announced.
pub(super) fn parse_pixels(mut f: Fields<'_>) -> io::Result<Result<Announced, JobError>> {
    if f.u8()? == 0 {
        return get_error(&mut f).map(Err);
    }
    let a = Announced {
        width: f.u32()?,
        height: f.u32()?,
        layout: *LAYOUTS
            .get(usize::from(f.u8()?))
            .ok_or_else(|| bad("layout"))?,
        depth: *DEPTHS
            .get(usize::from(f.u8()?))
            .ok_or_else(|| bad("depth"))?,
        damage: f.opt_string()?,
        len: f.u64()?,
    };
    let expected =
        u64::from(a.width) * u64::from(a.height) * (a.layout.channels() * a.depth.bytes()) as u64;
    if a.len != expected {
        return Err(bad("pixel count does not match the size"));
    }
    Ok(Ok(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: &Frame) -> Vec<u8> {
        let mut wire = Vec::new();
        frame.send(&mut wire).unwrap();
        let mut buf = Vec::new();
        receive(&mut wire.as_slice(), &mut buf).unwrap();
        buf
    }

    #[test]
    fn requests_survive_the_wire() {
        for request in [
            Request::Probe {
                format: Format::Avif,
                max_pixels: 1 << 40,
                name: "été.avif".into(),
                len: 12345,
            },
            Request::Decode {
                min_size: Some((800.5, 600.25)),
                threads: 3,
                fail_on: FailOn::Truncated,
            },
            Request::Decode {
                min_size: None,
                threads: 1,
                fail_on: FailOn::Warning,
            },
        ] {
            let buf = round_trip(&request.frame());
            let back = Request::parse(Fields(&buf)).unwrap();
            assert_eq!(format!("{back:?}"), format!("{request:?}"));
        }
    }

    #[test]
    fn headers_and_errors_survive_the_wire() {
        let header = Header {
            width: 4000,
            height: 3000,
            orientation: 6,
            icc: Some(vec![1, 2, 3]),
            cmyk_icc: None,
            exif: None,
            xmp: Some(b"<x/>".to_vec()),
            resolution: Some(Resolution {
                x: 300.0,
                y: 72.0,
                unit: ResolutionUnit::Centimetre,
            }),
            bytes_per_pixel: 3,
            jpeg: None,
        };
        let buf = round_trip(&header_reply(&Ok((&header, 77))));
        let (back, coefficients) = parse_header(Fields(&buf)).unwrap().unwrap();
        assert_eq!(coefficients, 77);
        assert_eq!(format!("{back:?}"), format!("{header:?}"));

        let error = JobError::Decode {
            format: "WebP",
            message: "bad chunk".into(),
        };
        let buf = round_trip(&header_reply(&Err(error)));
        let back = parse_header(Fields(&buf)).unwrap().unwrap_err();
        assert_eq!(back.to_string(), "cannot decode WebP: bad chunk");
    }

    #[test]
    fn pixels_must_match_their_announced_size() {
        let px = Pixels {
            data: vec![0; 2 * 3 * 4 * 2],
            width: 2,
            height: 3,
            layout: Layout::Rgba,
            depth: Depth::Sixteen,
        };
        let buf = round_trip(&pixels_reply(&Ok((&px, Some("damaged".into())))));
        let a = parse_pixels(Fields(&buf)).unwrap().unwrap();
        assert_eq!((a.width, a.height, a.len), (2, 3, 48));
        assert_eq!(a.damage.as_deref(), Some("damaged"));

        // A child claiming more samples than its size holds is refused before any allocation.
        let lying = Pixels {
            data: vec![0; 100],
            ..px
        };
        let buf = round_trip(&pixels_reply(&Ok((&lying, None))));
        assert!(parse_pixels(Fields(&buf)).is_err());
    }
}
