// The privacy figures in one line each, as the CLI prints them: an evaluate's audit headline
// (copy fraction beside held-out real images, each attack's AUC) and a model's DP record.

const pct = (v) => (typeof v === "number" ? `${(v * 100).toFixed(1)}%` : "-");

export function auditText(audit) {
  if (!audit) return null;
  if (!audit.audited) return audit.note || "not run";
  const parts = [];
  const c = audit.copy_fraction;
  if (c) parts.push(`copies ${pct(c.value)} [${pct(c.low)}, ${pct(c.high)}] (held-out real images: ${pct(audit.copy_fraction_floor?.value)})`);
  for (const a of audit.membership_inference || []) parts.push(`${a.name}: AUC ${a.auc.value.toFixed(3)}`);
  if (audit.differential_privacy?.epsilon !== undefined) parts.push(`trained with DP at ε=${Number(audit.differential_privacy.epsilon).toPrecision(3)}`);
  return parts.join("; ") || "audited";
}

export function dpText(privacy) {
  if (!privacy) return "not differentially private";
  return `ε=${Number(privacy.epsilon).toPrecision(3)}, δ=${Number(privacy.delta).toExponential(1)}`;
}
