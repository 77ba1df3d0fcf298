package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// readmeCommands returns the commands the README's "## Commands" block
// lists, as paths below sunpath ("user create"). A line reads
// "sunpath WORD… [flags] [| WORD …]  description"; "a|b" and " | b" are
// alternatives of the last word.
func readmeCommands(t *testing.T, readme string) []string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "\n## Commands\n")
	if !ok {
		t.Fatal(`README.md has no "## Commands" section`)
	}
	_, block, ok := strings.Cut(after, "```\n")
	if ok {
		block, _, ok = strings.Cut(block, "```")
	}
	if !ok {
		t.Fatal(`README.md's "## Commands" section has no code block`)
	}
	word := regexp.MustCompile(`^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*$`)
	var out []string
	for _, line := range strings.Split(block, "\n") {
		usage := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), 2)[0]
		toks := strings.Fields(usage)
		if len(toks) == 0 {
			continue
		}
		if toks[0] != "sunpath" {
			t.Errorf("README command line does not start with sunpath: %q", line)
			continue
		}
		var prefix, last []string
		alt, args := false, false
		for _, tok := range toks[1:] {
			switch {
			case tok == "|":
				alt = true
			case word.MatchString(tok) && alt:
				last, alt = append(last, strings.Split(tok, "|")...), false
			case word.MatchString(tok) && !args:
				prefix = append(prefix, last...)
				last = strings.Split(tok, "|")
			default:
				args = true
			}
		}
		for _, l := range last {
			out = append(out, strings.Join(append(slices.Clone(prefix), l), " "))
		}
	}
	return out
}

// cliCommands returns every runnable command below root, as paths.
func cliCommands(cmd *cobra.Command, prefix string) []string {
	var out []string
	for _, sub := range cmd.Commands() {
		if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
			continue
		}
		path := strings.TrimSpace(prefix + " " + sub.Name())
		if sub.HasSubCommands() {
			out = append(out, cliCommands(sub, path)...)
		} else {
			out = append(out, path)
		}
	}
	return out
}

// TestREADMECommands keeps the README's command list equal to the command
// tree: a listed command that does not exist, or one that exists and is not
// listed, fails.
func TestREADMECommands(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := readmeCommands(t, string(b))
	actual := cliCommands(newRootCmd(&cli{}), "")
	if len(actual) < 10 {
		t.Fatalf("the command tree has only %v", actual)
	}
	for _, c := range listed {
		if !slices.Contains(actual, c) {
			t.Errorf("README lists 'sunpath %s', which does not exist", c)
		}
	}
	for _, c := range actual {
		if !slices.Contains(listed, c) {
			t.Errorf("'sunpath %s' exists but the README's Commands block does not list it", c)
		}
	}
}
