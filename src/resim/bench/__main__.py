from resim.bench.cli import main

main()
