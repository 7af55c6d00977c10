//! The options that shape an output, and the two views of them a build needs: the manifest's
//! `options` object (what the whole build was made with) and each output's key (a digest of
//! what shaped that one file, so that a changed option redoes exactly the outputs it affects).
//!
//! [`OutputOptions`] is the one home of that list. Both views destructure [`Settings`] without
//! `..`, so a new setting does not compile until it is given its place in both (or is declared
//! to shape nothing, as the pixel limit is).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::{Efforts, FailOn, Settings};
use crate::format::Format;
use crate::geometry::{Crop, Target};
use crate::metadata::DpiPolicy;
use crate::naming::Template;

use super::Options;

/// The settings of a build as far as they shape its outputs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputOptions<'a> {
    settings: &'a Settings,
    template: &'a Template,
}

impl<'a> OutputOptions<'a> {
    /// The output-shaping part of `settings`, with outputs named by `template`.
    pub(crate) fn new(settings: &'a Settings, template: &'a Template) -> Self {
        OutputOptions { settings, template }
    }

    /// The manifest's `options` object: every value that shapes any output of the build.
    pub(crate) fn manifest(&self) -> Options {
        let Settings {
            targets,
            formats,
            quality,
            effort,
            tuning,
            progressive,
            lossless,
            filter,
            background,
            shrink,
            max_pixels: _, // refuses inputs; never changes an output
            icc,
            metadata,
            linear,
            animated,
            dpi,
            fail_on,
            crop,
            placeholders,
        } = self.settings;
        let lower = |v: &dyn std::fmt::Debug| Value::from(format!("{v:?}").to_lowercase());
        let mut values = BTreeMap::new();
        let sizes: Vec<Value> = targets
            .iter()
            .map(|t| {
                json!({
                    "width": t.width.map(|d| d.to_string()),
                    "height": t.height.map(|d| d.to_string()),
                })
            })
            .collect();
        values.insert("sizes".into(), Value::Array(sizes));
        let formats: Vec<Value> = formats
            .iter()
            .map(|f| Value::from(f.map_or("same", Format::name)))
            .collect();
        values.insert("formats".into(), Value::Array(formats));
        values.insert(
            "quality".into(),
            json!({"jpeg": quality.jpeg, "webp": quality.webp, "avif": quality.avif}),
        );
        values.insert(
            "effort".into(),
            json!({"webp": effort.webp, "avif": effort.avif, "png": effort.png}),
        );
        let first = targets.first();
        values.insert(
            "fit".into(),
            first.map_or(Value::from(""), |t| lower(&t.fit)),
        );
        values.insert(
            "upscale".into(),
            Value::from(first.is_some_and(|t| t.upscale)),
        );
        values.insert("progressive".into(), Value::from(*progressive));
        values.insert("linear".into(), Value::from(*linear));
        values.insert("animated".into(), Value::from(*animated));
        values.insert("lossless".into(), Value::from(*lossless));
        values.insert("filter".into(), lower(filter));
        values.insert("shrink".into(), lower(shrink));
        values.insert("icc".into(), lower(icc));
        values.insert("metadata".into(), lower(metadata));
        let [r, g, b] = background;
        values.insert(
            "background".into(),
            Value::from(format!("#{r:02x}{g:02x}{b:02x}")),
        );
        values.insert("name".into(), Value::from(self.template.as_str()));
        // Recorded only when set, so manifests written before `--dpi` existed keep their hash.
        if *dpi != DpiPolicy::Keep {
            values.insert("dpi".into(), Value::from(format!("{dpi:?}").to_lowercase()));
        }
        if *fail_on != FailOn::default() {
            values.insert("fail_on".into(), lower(fail_on));
        }
        if let Some(crop) = crop_name(*crop) {
            values.insert("crop".into(), Value::from(crop));
        }
        if !placeholders.is_empty() {
            let names = placeholders.iter().map(|k| Value::from(k.name())).collect();
            values.insert("placeholder".into(), Value::Array(names));
        }
        if let Some(score) = tuning.score {
            values.insert("quality_auto".into(), Value::from(score));
        }
        if let Some(max) = tuning.max_bytes {
            values.insert("max_bytes".into(), Value::from(max));
        }
        Options::new(values)
    }

    /// The key of one output: a digest of its target, its format and every setting that shapes
    /// it. Settings of other formats (WebP quality for a JPEG) are left out, so changing them
    /// redoes nothing here. The name template is not part of it: a renamed output is a
    /// different path, which the manifest sees anyway.
    pub(crate) fn key(&self, target: &Target, format: Format) -> String {
        let Settings {
            targets: _, // this output's own target is `target`
            formats: _, // this output's own format is `format`
            quality: _, // only this format's quality, below
            effort,
            tuning,
            progressive,
            lossless,
            filter,
            background,
            shrink,
            max_pixels: _,
            icc,
            metadata,
            linear,
            animated,
            dpi,
            fail_on,
            crop,
            // Per source, not per output: a placeholder never changes an output file. The plan
            // stage keeps a source's placeholder while its content hash is unchanged.
            placeholders: _,
        } = self.settings;
        // Only this format's own effort, and for AVIF the encoder too: a build that changes it
        // (libaom for rav1e) redoes its AVIFs.
        let Efforts { webp, avif, png } = effort;
        let effort = match format {
            Format::Webp => format!("|e{webp}"),
            Format::Avif => format!(
                "|e{avif}|{}",
                crate::format::AVIF_ENCODER.unwrap_or("no encoder")
            ),
            Format::Png => format!("|png{png}"),
            _ => String::new(),
        };
        let text = format!(
            "{target:?}|{format:?}|q{}|p{progressive}|l{lossless}|{filter:?}|\
             {background:?}|{shrink:?}|{icc:?}|{metadata:?}|lin{linear}{effort}",
            self.settings.quality_for(format),
        );
        // Appended only when set, so turning them on redoes outputs without changing the keys
        // that manifests written before the options existed hold.
        let text = if *animated { text + "|animated" } else { text };
        let text = match dpi {
            DpiPolicy::Keep => text,
            dpi => format!("{text}|dpi{dpi:?}"),
        };
        // A damaged input makes an output only when --fail-on lets it through.
        let text = if *fail_on == FailOn::default() {
            text
        } else {
            format!("{text}|fail{fail_on:?}")
        };
        // Where a cover crop's window goes: appended only off the centre, like the above.
        let text = match crop_name(*crop) {
            Some(crop) => format!("{text}|crop {crop}"),
            None => text,
        };
        // The search replaces the fixed quality of lossy formats, and the cap may lower it.
        let text = match (tuning.score, tuning.max_bytes) {
            (None, None) => text,
            (score, max) => format!("{text}|auto{score:?}|max{max:?}"),
        };
        format!("{:016x}", crate::hash::xxh64(text.as_bytes(), 0))
    }
}

/// How the manifest and the keys spell a crop placement; `None` for the centre, which is what
/// every manifest written before `--crop` existed was made with.
fn crop_name(crop: Crop) -> Option<String> {
    match crop {
        Crop::Centre => None,
        Crop::Attention => Some("attention".into()),
        Crop::Entropy => Some("entropy".into()),
        Crop::Focal(x, y) => Some(format!("focal {x},{y}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        settings_for_width, Filter, IccPolicy, MetaPolicy, PlaceholderKind, Shrink,
    };

    /// A named change to one setting, and whether it shapes a JPEG output.
    type Change = (&'static str, Box<dyn Fn(&mut Settings)>, bool);

    /// Every single-setting change.
    fn changes() -> Vec<Change> {
        vec![
            ("jpeg quality", Box::new(|s| s.quality.jpeg = 50), true),
            ("webp quality", Box::new(|s| s.quality.webp = 50), false),
            // Each effort shapes only its own format (`each_effort_keys_its_own_format_only`).
            ("avif effort", Box::new(|s| s.effort.avif = 7), false),
            ("png effort", Box::new(|s| s.effort.png = 5), false),
            (
                "quality auto",
                Box::new(|s| s.tuning.score = Some(70.0)),
                true,
            ),
            (
                "max bytes",
                Box::new(|s| s.tuning.max_bytes = Some(200 << 10)),
                true,
            ),
            (
                "baseline",
                Box::new(|s| s.progressive = !s.progressive),
                true,
            ),
            ("lossless", Box::new(|s| s.lossless = !s.lossless), true),
            ("filter", Box::new(|s| s.filter = Filter::Box), true),
            ("background", Box::new(|s| s.background = [1, 2, 3]), true),
            ("shrink", Box::new(|s| s.shrink = Shrink::Off), true),
            ("icc", Box::new(|s| s.icc = IccPolicy::Strip), true),
            (
                "metadata",
                Box::new(|s| s.metadata = MetaPolicy::Strip),
                true,
            ),
            ("linear", Box::new(|s| s.linear = !s.linear), true),
            ("animated", Box::new(|s| s.animated = !s.animated), true),
            ("dpi", Box::new(|s| s.dpi = DpiPolicy::Scale), true),
            ("fail on", Box::new(|s| s.fail_on = FailOn::None), true),
            ("crop", Box::new(|s| s.crop = Crop::Attention), true),
            ("focal", Box::new(|s| s.crop = Crop::Focal(0.3, 0.6)), true),
            (
                "placeholder",
                Box::new(|s| s.placeholders = vec![PlaceholderKind::Color]),
                false,
            ),
        ]
    }

    #[test]
    fn each_option_changes_the_manifest_and_exactly_the_keys_it_shapes() {
        let template = Template::default_for(1);
        let base = settings_for_width(320);
        let target = base.targets[0];
        let options = OutputOptions::new(&base, &template);
        let (hash, key) = (options.manifest().hash, options.key(&target, Format::Jpeg));
        for (what, change, shapes_jpeg) in changes() {
            let mut changed = base.clone();
            change(&mut changed);
            let options = OutputOptions::new(&changed, &template);
            assert_ne!(options.manifest().hash, hash, "{what}: manifest options");
            let changed_key = options.key(&target, Format::Jpeg);
            assert_eq!(changed_key != key, shapes_jpeg, "{what}: JPEG key");
        }
        let mut bigger = base.clone();
        bigger.max_pixels /= 2;
        let options = OutputOptions::new(&bigger, &template);
        assert_eq!(
            options.manifest().hash,
            hash,
            "the pixel limit shapes no output"
        );
        assert_eq!(options.key(&target, Format::Jpeg), key);
        assert_ne!(options.key(&target, Format::Webp), key, "format");
    }

    /// Each format's `--effort` shapes that format's outputs and no other; placeholders shape
    /// no output at all.
    #[test]
    fn each_effort_keys_its_own_format_only() {
        let template = Template::default_for(1);
        let base = settings_for_width(320);
        let target = base.targets[0];
        type EffortChange = (Format, fn(&mut Efforts));
        let changes: [EffortChange; 3] = [
            (Format::Png, |e| e.png = 6),
            (Format::Webp, |e| e.webp = 6),
            (Format::Avif, |e| e.avif = 9),
        ];
        for (own, change) in changes {
            let mut changed = base.clone();
            change(&mut changed.effort);
            changed.placeholders = PlaceholderKind::ALL.to_vec();
            let (a, b) = (
                OutputOptions::new(&base, &template),
                OutputOptions::new(&changed, &template),
            );
            assert_ne!(a.key(&target, own), b.key(&target, own), "{own}");
            for format in Format::ALL.into_iter().filter(|&f| f != own) {
                assert_eq!(
                    a.key(&target, format),
                    b.key(&target, format),
                    "{own}: {format}"
                );
            }
        }
    }

    /// Keys are stored in manifests: changing how they are made redoes every output of every
    /// build once. This pins the digest of the default settings.
    #[test]
    fn output_keys_are_stable_across_releases() {
        let template = Template::default_for(1);
        let settings = settings_for_width(320);
        let key = OutputOptions::new(&settings, &template).key(&settings.targets[0], Format::Jpeg);
        assert_eq!(key, KEY_OF_DEFAULT_320_JPEG);
    }

    /// Changed twice by issue #17: the default JPEG quality (82 → 78), then the key kept only
    /// its own format's effort (a JPEG's held the WebP and AVIF efforts, whose AVIF default
    /// changed with the encoder).
    const KEY_OF_DEFAULT_320_JPEG: &str = "1e2255a933553635";
}
