from gpu_lol.cli import main

raise SystemExit(main())
