// The job board's rows: this notebook's jobs as the gateway lists them (its session), with
// steps and tokens from each running job's interaction. Pure helpers plus one page fetch.
import { TERMINAL } from "./reducer.js";

export function tokensOf(usage) {
  if (!usage) return 0;
  return usage.total_tokens ?? ((usage.total_input_tokens || 0) + (usage.total_output_tokens || 0));
}

/** A row from the session's job record and (if fetched) the job's interaction. */
export function jobRow(record, interaction = null) {
  return {
    id: record.id,
    status: (interaction && interaction.status) || record.status || null,
    thread: record.thread || null,
    model: record.model || (interaction && interaction.model) || null,
    agent: record.agent || (interaction && interaction.agent) || null,
    created: record.created || (interaction && interaction.created) || null,
    updated: (interaction && interaction.updated) || record.updated || null,
    steps: interaction ? (interaction.steps || []).length : record.steps ?? null,
    tokens: interaction ? tokensOf(interaction.usage) : record.tokens ?? null,
    environment_id: (interaction && interaction.environment_id) || record.environment_id || null,
  };
}

export function running(row) {
  return !TERMINAL.has(row.status);
}

/** Fresh rows from the page's gateway: running jobs (and ones never fetched) get a GET. */
export async function fetchRows(gateway, key, previous = []) {
  const session = await gateway.session(key);
  const known = new Map(previous.map((r) => [r.id, r]));
  return Promise.all((session.jobs || []).map(async (record) => {
    const before = known.get(record.id);
    if (before && !running(before) && before.steps != null) return before;
    try {
      return jobRow(record, await gateway.get(record.id));
    } catch {
      return jobRow(record);
    }
  }));
}
