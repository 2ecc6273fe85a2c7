from trt_tui.cli import main

raise SystemExit(main())
