package importer

// A spreadsheet opening a CSV runs a cell that starts with =, +, -, @, a tab or a carriage return
// as a formula (CSV injection). A CSV export guards such a text value with a leading apostrophe,
// which spreadsheets show as text, and a CSV import takes it off again, so an export still imports
// back exactly. A value that itself starts with an apostrophe before one of those characters (or
// before another apostrophe) is guarded too, so taking one apostrophe off is never ambiguous.

// GuardCell is the CSV text of a text value s: s, or s behind an apostrophe when a spreadsheet
// would read s as a formula.
func GuardCell(s string) string {
	if startsFormula(s) || (len(s) > 1 && s[0] == '\'' && (startsFormula(s[1:]) || s[1] == '\'')) {
		return "'" + s
	}
	return s
}

// UnguardCell is the value of a CSV cell GuardCell wrote: the cell without its guarding apostrophe.
func UnguardCell(cell string) string {
	if len(cell) > 1 && cell[0] == '\'' && (startsFormula(cell[1:]) || cell[1] == '\'') {
		return cell[1:]
	}
	return cell
}

func startsFormula(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}
