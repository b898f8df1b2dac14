.PHONY: run test bench package icons mutants
run:
	bash scripts/run.sh
test:
	bash scripts/test.sh
bench:
	bash scripts/bench.sh
package:
	bash scripts/package.sh
icons:
	bash scripts/package.sh icons
mutants:
	bash scripts/mutants.sh
