package httpapi

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/riskmodel"
)

// modelCard is a model's card as data: what it is for, how it was trained,
// its cross-validated metrics with 95% intervals, calibration table, tier
// policy and populations, and error rates by group.
type modelCard struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	Default bool   `json:"default"`
	// Language is the language of the texts below (zh-CN or en).
	Language    string   `json:"language"`
	Description string   `json:"description"`
	IntendedUse string   `json:"intended_use"`
	Limitations []string `json:"limitations"`
	// TranslationNote says when the texts are a working translation.
	TranslationNote string                `json:"translation_note,omitempty"`
	Protected       []string              `json:"protected"`
	TrainingData    riskmodel.DataRef     `json:"training_data"`
	Hyperparameters map[string]float64    `json:"hyperparameters"`
	Metrics         *riskmodel.Report     `json:"metrics"`
	TierPolicy      riskmodel.TierPolicy  `json:"tier_policy"`
	InputFields     []riskmodel.FieldSpec `json:"input_fields"`
	MinKnownInputs  int                   `json:"min_known_inputs"`
}

type modelPath struct {
	Name string `path:"name"`
	Lang string `query:"lang" enum:"zh-CN,en" description:"language of the card's texts (default zh-CN)"`
}

func (s *Server) getModel(c *gin.Context) {
	m, ok := s.activeModels()[c.Param("name")]
	if !ok {
		s.fail(c, fmt.Errorf("model: %w", errNotFound))
		return
	}
	lang := c.DefaultQuery("lang", "zh-CN")
	if lang != "zh-CN" && lang != "en" {
		s.fail(c, fieldError("lang", "must be zh-CN or en"))
		return
	}
	man, spec, ref := m.Manifest(), m.Spec(), m.Ref()
	card := modelCard{Name: ref.Name, Version: ref.Version, SHA256: ref.SHA256, Default: ref.Name == s.deps.DefaultModel, Language: "en",
		Description: spec.Description, IntendedUse: spec.IntendedUse, Limitations: spec.Limitations, Protected: spec.Protected,
		TrainingData: man.TrainingData, Hyperparameters: man.Hyperparameters, Metrics: man.Metrics, TierPolicy: man.Tiers,
		InputFields: m.InputFields(), MinKnownInputs: s.deps.Casework.MinKnownInputs(m)}
	if zh, ok := riskmodel.CardTextZH(ref.Name); ok && lang == "zh-CN" {
		card.Language, card.Description, card.IntendedUse, card.Limitations = "zh-CN", zh.Description, zh.IntendedUse, zh.Limitations
		card.TranslationNote = "工作译文；以英文原文（lang=en）为准。"
	}
	if card.Limitations == nil {
		card.Limitations = []string{}
	}
	c.JSON(http.StatusOK, card)
}
