package web

import (
	"regexp"
	"strings"
	"testing"
)

// TestNamesNotIDs: a flag card names the instrument whose result raised it
// and links to that assessment; whoever administered a screening through
// the case system's key is named as the case system, not "api_key:…".
func TestNamesNotIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("N-1", "west", "carol", "倪一", nil)
	e.phq9At("N-1", 0, 1, 1, 1, 1, 1, 1, 1, 1, 1) // item 9: an urgent flag
	carol := e.client()
	e.signin(carol, "carol")
	_, page := e.get(carol, "/flags")
	src := regexp.MustCompile(`<a href="/assessments/[0-9a-f-]{36}" class="flag-source">([^<]*)</a>`).FindStringSubmatch(page)
	if src == nil || !strings.Contains(src[1], "PHQ-9") {
		t.Errorf("the flag card does not link its source assessment by instrument name: %v", src)
	}
	_, page = e.get(carol, "/subjects/N-1")
	if strings.Contains(page, "api_key:") || !strings.Contains(page, "案件系统（key-admin）") {
		t.Error("the timeline names the administering client by its audit id, not as the case system")
	}
}
