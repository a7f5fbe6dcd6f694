'use strict';

// serverless.yml's `organizations` parameter → the role ARNs the sync and refresh functions may assume.
//
// The parameter is what ROOTMAIL_ORGANIZATIONS takes (rootmail/config.py, parse_organizations): a JSON list of
// {"name", "roleArn", "externalId"}, or role ARNs separated by commas, or empty (the stack runs in the one
// management account and reads it with its own role). `roleArns` is the ARNs joined by commas, for the
// OrganizationsRoleArns template parameter: the IAM grant names exactly these roles. A value the functions would
// refuse stops the packaging here, with the same reason.

// As rootmail/config.py matches them: ASCII, whole; no comma in a role ARN (the grant splits the list on commas).
const ROLE_ARN = /^arn:aws[a-z-]*:iam::([0-9]{12}):role\/[\w+=.@/-]{1,512}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;

function parse(text) {
  const value = String(text || '').trim().replace(/^\ufeff/, '').trim();
  if (!value) return [];
  let entries;
  if (value.startsWith('[')) {
    try {
      entries = JSON.parse(value);
    } catch (error) {
      throw new Error(`organizations: not valid JSON (${error.message})`);
    }
    if (!Array.isArray(entries) || !entries.every((e) => e && typeof e === 'object' && !Array.isArray(e))) {
      throw new Error('organizations: expected a JSON list of {name, roleArn, externalId} objects');
    }
  } else {
    entries = value
      .split(',')
      .map((arn) => arn.trim())
      .filter(Boolean)
      .map((roleArn) => ({ roleArn }));
  }
  const found = entries.map((entry, index) => {
    const unknown = Object.keys(entry).filter((k) => !['name', 'roleArn', 'externalId'].includes(k));
    if (unknown.length) throw new Error(`organization ${index + 1}: unknown key(s) ${unknown.sort().join(', ')}`);
    const wrong = Object.keys(entry).filter((k) => typeof entry[k] !== 'string');
    if (wrong.length) throw new Error(`organization ${index + 1}: ${wrong.sort().join(', ')} must be text`);
    const match = ROLE_ARN.exec(String(entry.roleArn || ''));
    if (!match) throw new Error(`organization ${index + 1}: ${JSON.stringify(entry.roleArn)} is not an IAM role ARN`);
    const name = String(entry.name || match[1]);
    if (!NAME.test(name) || name === 'imported') throw new Error(`organization ${index + 1}: invalid name ${name}`);
    if (entry.externalId !== undefined && !EXTERNAL_ID.test(String(entry.externalId))) {
      throw new Error(`organization ${name}: invalid external ID`);
    }
    return { name, roleArn: entry.roleArn, account: match[1] };
  });
  // One management account runs one organisation: two roles there would sync it twice.
  for (const key of ['name', 'account']) {
    const values = found.map((o) => o[key]);
    const repeated = values.filter((v, i) => values.indexOf(v) !== i);
    if (repeated.length) throw new Error(`organizations: the same ${key} twice: ${repeated.join(', ')}`);
  }
  if (value && !found.length) throw new Error('organizations: no role ARN given');
  return found;
}

module.exports = {
  parse,
  roleArns: async ({ resolveVariable }) => {
    // The one role of earlier versions: refused rather than ignored (the stack would read its own account instead).
    const legacy = await resolveVariable("param:organizationsRoleArn, ''");
    if (legacy) throw new Error(`organizationsRoleArn is replaced by organizations: give it ${legacy}`);
    return parse(await resolveVariable('param:organizations'))
      .map((o) => o.roleArn)
      .join(',');
  },
};
