from comms.cli import main

raise SystemExit(main())
