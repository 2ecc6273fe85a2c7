"""Preset constants the CLI needs to declare its flags, kept free of imports so that `trt-tui --help` does
not load the preset schema, resolution and exporters. `preset.exports` imports them from here."""

FORMATS = ("trtexec", "script", "polygraphy", "autocast", "json")  # export formats
