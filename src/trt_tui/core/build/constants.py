"""Build constants the CLI needs to declare its flags, kept free of imports so that `trt-tui --help` does
not load the job manager and the backends. `selection` imports them from here."""

AUTO_ORDER = ("tensorrt", "trtexec", "emulate")  # the order in which `auto` tries the backends
CHOICES = ("auto", *AUTO_ORDER)
