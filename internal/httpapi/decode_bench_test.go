package httpapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

// BenchmarkDecodeAssessment measures decoding a PHQ-9 submission the way
// the API does: media type check, size-limited read kept for the
// idempotency fingerprint, depth check, strict JSON decoding.
func BenchmarkDecodeAssessment(b *testing.B) {
	body := []byte(`{"instrument":"phq9","language":"zh-CN","administered_by":"counselor 12","completed_at":"2026-11-22T08:30:00Z",` +
		`"answers":{"phq9_1":1,"phq9_2":0,"phq9_3":2,"phq9_4":1,"phq9_5":0,"phq9_6":1,"phq9_7":0,"phq9_8":0,"phq9_9":0}}`)
	gin.SetMode(gin.ReleaseMode)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodPost, "/v1/subjects/S-1/assessments", bytes.NewReader(body))
		c.Request.Header.Set("Content-Type", "application/json")
		var req assessmentRequest
		if err := decodeJSON(c, &req); err != nil || req.Instrument != "phq9" || len(req.Answers) == 0 {
			b.Fatalf("decode: %v %+v", err, req)
		}
	}
}
