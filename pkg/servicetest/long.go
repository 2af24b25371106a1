package servicetest

import "os"

// LongTestsEnv is the environment variable that turns on the long cases (CI sets it; a developer's
// `make test` leaves it off so the suite stays quick).
const LongTestsEnv = "CRM_LONG_TESTS"

// Long reports whether the long cases run.
func Long() bool { return os.Getenv(LongTestsEnv) == "1" }

// Size picks the size of a generated data set: normal in a developer's run, long under the flag.
func Size(normal, long int) int {
	if Long() {
		return long
	}
	return normal
}
