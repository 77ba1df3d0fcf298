package riskmodel

// CardText is a model card's texts in one language.
type CardText struct {
	Description, IntendedUse string
	Limitations              []string
}

// CardTextZH returns the working Chinese translation of a shipped model's
// card texts (the English in its spec.yaml is authoritative).
func CardTextZH(name string) (CardText, bool) {
	t, ok := cardTextsZH[name]
	return t, ok
}

var cardTextsZH = map[string]CardText{
	"nij-intake": {
		Description: "依据开始监管时已知的信息，估计假释出狱后三年内因新的重罪或轻罪被逮捕的概率。",
		IntendedUse: "在社区监管入矫时给出初始监管等级建议（宽管 / 普管 / 严管），作为工作人员结合当事人需要与处境作出决定的参考之一。",
		Limitations: []string{
			"训练数据为 2013–2015 年佐治亚州（美国）的假释人员；其他地区和其他时期的基础比率、监管实践和记录方式不同。在其他司法辖区使用前须重新验证和校准。",
			"结局是新的逮捕，而非定罪：它既反映行为，也反映执法；不同社区和群体的逮捕率不同。",
			"种族和性别从不作为输入，但输入与它们相关（例如女性不记录帮派关系，居住区域反映居住隔离）；因此按种族和性别报告误差率。",
			"训练数据中女性较少（12%），对她们的估计不确定性更大。",
			"只使用开始监管时已知的信息，区分能力有限（AUC 约 0.73–0.74）。有了监管期间的数据后，请改用 nij-review 重新评估。",
		},
	},
	"nij-review": {
		Description: "依据开始监管时已知的信息以及监管期间的记录（违规、药检、就业、矫正项目、居住变动），估计出狱后三年内因新的重罪或轻罪被逮捕的概率。",
		IntendedUse: "对已在社区监管中的人员进行监管等级复核（宽管 / 普管 / 严管），作为工作人员结合当事人需要与处境作出决定的参考之一。",
		Limitations: []string{
			"训练数据为 2013–2015 年佐治亚州（美国）的假释人员；其他地区和其他时期的基础比率、监管实践和记录方式不同。在其他司法辖区使用前须重新验证和校准。",
			"结局是新的逮捕，而非定罪：它既反映行为，也反映执法；不同社区和群体的逮捕率不同。",
			"种族和性别从不作为输入，但输入与它们相关（例如女性不记录帮派关系，居住区域反映居住隔离）；因此按种族和性别报告误差率。",
			"训练数据中女性较少（12%），对她们的估计不确定性更大。",
			"监管期间的输入（药检、就业、违规）随监管时间累积；对刚开始监管的人信息较少，而较早被再次逮捕的人记录更短。请在复核时而非入矫时使用；监管记录尚少时优先使用 nij-intake。",
		},
	},
	"compas-general": {
		Description: "依据年龄、犯罪史和当前指控，估计 COMPAS 筛查后两年内被再次逮捕的概率。",
		IntendedUse: "在第二个公开数据集上演示和审计 Sunpath 的训练流程，并与 COMPAS 十分位评分作同等比较。不用于 Sunpath 部署中的监管决定，因为人群不同。",
		Limitations: []string{
			"布劳沃德县 2013–2014 年审前筛查：人群、结局观察期和用途都与社区矫正不同。",
			"结局是新的逮捕，而非定罪；逮捕率既反映行为，也反映执法。",
			"种族和性别从不作为输入，但犯罪史次数通过执法与种族相关；因此报告按种族的误差率，基础比率不同之处误差率也不同。",
			"亚裔（32 人）和美洲原住民（18 人）人数太少，其比率不可靠。",
		},
	},
}
