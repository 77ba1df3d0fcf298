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
	if zh, ok := cardTextsZH[ref.Name]; ok && lang == "zh-CN" {
		card.Language, card.Description, card.IntendedUse, card.Limitations = "zh-CN", zh.description, zh.intendedUse, zh.limitations
		card.TranslationNote = "工作译文；以英文原文（lang=en）为准。"
	}
	if card.Limitations == nil {
		card.Limitations = []string{}
	}
	c.JSON(http.StatusOK, card)
}

// cardTextsZH are working Chinese translations of the shipped models' card
// texts (the English in each spec.yaml is authoritative).
var cardTextsZH = map[string]struct {
	description, intendedUse string
	limitations              []string
}{
	"nij-intake": {
		description: "依据开始监管时已知的信息，估计假释出狱后三年内因新的重罪或轻罪被逮捕的概率。",
		intendedUse: "在社区监管入矫时给出初始监管等级建议（宽管 / 普管 / 严管），作为工作人员结合当事人需要与处境作出决定的参考之一。",
		limitations: []string{
			"训练数据为 2013–2015 年佐治亚州（美国）的假释人员；其他地区和其他时期的基础比率、监管实践和记录方式不同。在其他司法辖区使用前须重新验证和校准。",
			"结局是新的逮捕，而非定罪：它既反映行为，也反映执法；不同社区和群体的逮捕率不同。",
			"种族和性别从不作为输入，但输入与它们相关（例如女性不记录帮派关系，居住区域反映居住隔离）；因此按种族和性别报告误差率。",
			"训练数据中女性较少（12%），对她们的估计不确定性更大。",
			"只使用开始监管时已知的信息，区分能力有限（AUC 约 0.73–0.74）。有了监管期间的数据后，请改用 nij-review 重新评估。",
		},
	},
	"nij-review": {
		description: "依据开始监管时已知的信息以及监管期间的记录（违规、药检、就业、矫正项目、居住变动），估计出狱后三年内因新的重罪或轻罪被逮捕的概率。",
		intendedUse: "对已在社区监管中的人员进行监管等级复核（宽管 / 普管 / 严管），作为工作人员结合当事人需要与处境作出决定的参考之一。",
		limitations: []string{
			"训练数据为 2013–2015 年佐治亚州（美国）的假释人员；其他地区和其他时期的基础比率、监管实践和记录方式不同。在其他司法辖区使用前须重新验证和校准。",
			"结局是新的逮捕，而非定罪：它既反映行为，也反映执法；不同社区和群体的逮捕率不同。",
			"种族和性别从不作为输入，但输入与它们相关（例如女性不记录帮派关系，居住区域反映居住隔离）；因此按种族和性别报告误差率。",
			"训练数据中女性较少（12%），对她们的估计不确定性更大。",
			"监管期间的输入（药检、就业、违规）随监管时间累积；对刚开始监管的人信息较少，而较早被再次逮捕的人记录更短。请在复核时而非入矫时使用；监管记录尚少时优先使用 nij-intake。",
		},
	},
	"compas-general": {
		description: "依据年龄、犯罪史和当前指控，估计 COMPAS 筛查后两年内被再次逮捕的概率。",
		intendedUse: "在第二个公开数据集上演示和审计 Sunpath 的训练流程，并与 COMPAS 十分位评分作同等比较。不用于 Sunpath 部署中的监管决定，因为人群不同。",
		limitations: []string{
			"布劳沃德县 2013–2014 年审前筛查：人群、结局观察期和用途都与社区矫正不同。",
			"结局是新的逮捕，而非定罪；逮捕率既反映行为，也反映执法。",
			"种族和性别从不作为输入，但犯罪史次数通过执法与种族相关；因此报告按种族的误差率，基础比率不同之处误差率也不同。",
			"亚裔（32 人）和美洲原住民（18 人）人数太少，其比率不可靠。",
		},
	},
}
