package importer

import "testing"

// TestGuardedCellsReadBackExactly: every value that a spreadsheet would run as a formula is
// written behind an apostrophe, and every value, guarded or not, reads back as it was.
func TestGuardedCellsReadBackExactly(t *testing.T) {
	for _, tt := range []struct{ value, cell string }{
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"-5", "'-5"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"'=x", "''=x"},
		{"''", "'''"},
		{"'quoted'", "'quoted'"},
		{"'", "'"},
		{"", ""},
		{"Ada", "Ada"},
		{"a=b", "a=b"},
	} {
		if got := GuardCell(tt.value); got != tt.cell {
			t.Errorf("GuardCell(%q) = %q, want %q", tt.value, got, tt.cell)
		}
		if got := UnguardCell(tt.cell); got != tt.value {
			t.Errorf("UnguardCell(%q) = %q, want %q", tt.cell, got, tt.value)
		}
	}
}
