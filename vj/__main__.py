from vj.cli import main

if __name__ == "__main__":  # guarded: the render's spawned encoder process re-imports the main module
    raise SystemExit(main())
