from openvid_assets.cli import main

raise SystemExit(main())
