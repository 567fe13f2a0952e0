from textbooks.cli import main

raise SystemExit(main())
