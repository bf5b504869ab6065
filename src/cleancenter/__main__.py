from cleancenter.cli import main

main()
