.PHONY: run test bench package icons
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
