from rdtf_engine.cli.main import run

run()
