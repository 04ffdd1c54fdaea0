/**
 * Checks of the azd/Bicep deployment over the ARM JSON the real Bicep compiler makes of infra/
 * (what azd deploys). Each check is a function of the template returning its problems: the real
 * template must have none, and a mutated copy must be caught, which proves the check can fail. What
 * the compiler and its linter check themselves (modules resolvable, parameters known and complete,
 * output references, unused parameters, syntax) is proven the same way on mutated copies of the
 * sources. Without a .NET SDK to restore the compiler the checks are skipped, and say so; in CI
 * (CI=true) a missing compiler fails.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { JOBS_TABLE, POISON_QUEUE, REQUEST_QUEUE } from '../../../src/lib/azure/storage-clients';
import { loadConfig } from '../../../src/lib/config/config';
import { ROOT } from '../../support/build';
import {
  at,
  build,
  callArgs,
  findBicep,
  lint,
  lintMutations,
  resolve,
  resources,
  strings,
  templates,
  type ArmResource,
  type ArmTemplate,
  type Located,
} from './bicep';

/** The file whose setting names are compared with the infra's. */
const CONFIG_SOURCE = 'src/lib/config/config.ts';
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

// ---------------------------------------------------------------------------------------------
// (a) settings: the code's names against the infra's names

/** Read by the code, deliberately not set by the infra. */
const OPTIONAL_IN_INFRA: Record<string, string> = {
  AzureWebJobsStorage: 'a connection string (local / Azurite); Azure uses the identity-based __ settings',
  AzureWebJobsStorage__accountName: 'the explicit blob/queue/table service URIs are set instead',
  BASM_BOSH_IO_URL: 'defaults to https://bosh.io',
  BASM_ALLOWED_DOWNLOAD_HOSTS: "defaults to bosh.io's known stemcell hosts",
  BASM_STORAGE_CONNECTION_STRING: 'local / Azurite only; in Azure it would carry an account key',
  AZURE_RESOURCE_MANAGER_ENDPOINT: 'sovereign clouds only; defaults to public Azure',
  AZURE_AUTHORITY_HOST: 'sovereign clouds only; defaults to public Azure',
  BASM_GALLERY_PUBLISHER: 'image definitions follow the BOSH Azure CPI naming by default',
  BASM_GALLERY_OFFER: 'image definitions follow the BOSH Azure CPI naming by default',
  BASM_GALLERY_SKU: 'image definitions follow the BOSH Azure CPI naming by default',
  BASM_GALLERY_IMAGE_NAME: 'image definitions follow the BOSH Azure CPI naming by default',
  BASM_KEEP_SOURCE_VHD: 'defaults to false (staged blobs deleted once published)',
  BASM_INVOCATION_BUDGET_SECONDS: "derived from host.json's functionTimeout",
  BASM_NOTIFY_GITHUB_TOKEN: 'the token is read from Key Vault (AZURE_KEY_VAULT_URL), never an app setting',
  BASM_NOTIFY_GITHUB_API_URL: 'defaults to https://api.github.com',
  BASM_NOTIFY_ON_FAILURE: 'defaults to true',
  BASM_LEASE_SECONDS: 'defaults to 60',
  BASM_GALLERY_POLL_SECONDS: 'defaults to 30 seconds between looks at a running gallery operation',
  BASM_DOWNLOAD_CACHE: 'defaults to resume: the compressed download is kept once a pass was interrupted',
  BASM_CHECKPOINT_MIB:
    'defaults to 256 MiB of VHD between transfer checkpoints (the design maximum); smaller only for tests',
  FUNCTIONS_PORT: 'port of the local host only',
};

/** Set by the infra for the Functions host or platform, not read by the app's code. */
const HOST_RUNTIME_SETTINGS: Record<string, string> = {
  AzureWebJobsStorage__credential: 'the Functions host: identity-based AzureWebJobsStorage',
  AzureWebJobsStorage__clientId: 'the Functions host (the code reads it too)',
  AzureWebJobsStorage__blobServiceUri: 'the Functions host (the code reads it too)',
  AzureWebJobsStorage__queueServiceUri: 'the Functions host queue trigger (the code reads it too)',
  AzureWebJobsStorage__tableServiceUri: 'the Functions host (the code reads it too)',
  APPLICATIONINSIGHTS_CONNECTION_STRING: 'the Functions host telemetry',
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'the Functions host telemetry: Entra ingestion as the identity',
  languageWorkers__node__arguments: "the Functions host: the Node worker's command line (V8 options)",
};

/**
 * App settings Flex Consumption does not allow: the table "Flex Consumption plan deprecations" of
 * https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
 * (its app settings; its site properties are below), plus AzureWebJobsFeatureFlags, refused here
 * because it turns on beta host features, "not production ready" by the same reference.
 */
const FLEX_FORBIDDEN_SETTINGS = [
  'ENABLE_ORYX_BUILD',
  'FUNCTIONS_EXTENSION_VERSION',
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_WORKER_RUNTIME_VERSION',
  'FUNCTIONS_MAX_HTTP_CONCURRENCY',
  'FUNCTIONS_WORKER_PROCESS_COUNT',
  'FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED',
  'SCM_DO_BUILD_DURING_DEPLOYMENT',
  'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
  'WEBSITE_CONTENTOVERVNET',
  'WEBSITE_CONTENTSHARE',
  'WEBSITE_DNS_SERVER',
  'WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT',
  'WEBSITE_NODE_DEFAULT_VERSION',
  'WEBSITE_RUN_FROM_PACKAGE',
  'WEBSITE_SKIP_CONTENTSHARE_VALIDATION',
  'WEBSITE_VNET_ROUTE_ALL',
  'AzureWebJobsFeatureFlags',
];

/** Site properties the same table deprecates on Flex Consumption (under properties or siteConfig). */
const FLEX_FORBIDDEN_SITE_PROPERTIES = [
  'alwaysOn',
  'containerSize',
  'ftpsState',
  'isReserved',
  'IsXenon',
  'javaVersion',
  'linuxFxVersion',
  'netFrameworkVersion',
  'powerShellVersion',
  'functionAppScaleLimit',
  'preWarmedInstanceCount',
  'use32BitWorkerProcess',
  'vnetBackupRestoreEnabled',
  'vnetContentShareEnabled',
  'vnetImagePullEnabled',
  'vnetRouteAllEnabled',
  'windowsFxVersion',
];

const SETTING_NAME = /^(?:(?:AZURE|BASM|FUNCTIONS)_[A-Z0-9_]+|AzureWebJobsStorage(?:__[A-Za-z]+)?)$/;

/** Setting names in config.ts: quoted literals, plus template literals expanded from their call sites. */
function codeSettingNames(src: string): { names: Set<string>; problems: string[] } {
  const names = new Set<string>();
  const problems: string[] = [];
  for (const m of src.matchAll(/'([A-Za-z0-9_]+)'/g)) if (SETTING_NAME.test(m[1]!)) names.add(m[1]!);
  for (const m of src.matchAll(
    /`((?:AZURE_|BASM_|AzureWebJobsStorage)[A-Za-z0-9_]*)\$\{(\w+)\}([A-Za-z0-9_]*)`/g,
  )) {
    const [whole, prefix, param, suffix] = m as unknown as [string, string, string, string];
    // `const fn = (param…) => … \`PREFIX${param}SUFFIX\``: expand with the literal arguments of fn('x').
    const before = src.slice(0, m.index);
    const fnDecl = [...before.matchAll(new RegExp(`const (\\w+) = \\(${param}\\b[^)]*\\) =>`, 'g'))].at(-1);
    const calls = fnDecl ? [...src.matchAll(new RegExp(`\\b${fnDecl[1]}\\('([A-Za-z0-9_]+)'\\)`, 'g'))] : [];
    if (calls.length === 0) problems.push(`config.ts: cannot expand setting name ${whole}`);
    for (const c of calls) names.add(`${prefix}${c[1]}${suffix}`);
  }
  return { names, problems };
}

const isAppSettings = (r: ArmResource): boolean =>
  r.type === 'Microsoft.Web/sites/config' && /'appsettings'\)\]$/.test(r.name);

/**
 * Names of the app settings: keys of the template variables the one appsettings resource unions,
 * each taken whole (`variables('x')`) or conditionally (`if(cond, createObject(), variables('x'))`).
 */
function infraSettingNames(t: ArmTemplate): { names: Set<string>; problems: string[] } {
  const found = resources(t).filter(isAppSettings);
  if (found.length !== 1)
    return { names: new Set(), problems: [`expected one appsettings resource, found ${found.length}`] };
  const r = found[0]!;
  const problems: string[] = [];
  const names = new Set<string>();
  const props = r.properties as unknown;
  const parts = typeof props === 'string' ? (callArgs(props, 'union') ?? [props]) : [];
  const objects: [string, unknown][] = typeof props === 'object' ? [['properties', props]] : [];
  for (const part of parts) {
    const whole = /^variables\('(\w+)'\)$/.exec(part);
    const args = callArgs(part, 'if');
    const maybe =
      args?.length === 3 && args[1] === 'createObject()' ? /^variables\('(\w+)'\)$/.exec(args[2]!) : null;
    const name = (whole ?? maybe)?.[1];
    if (!name) problems.push(`${r.module}: app settings come from ${part}, not a variable of that template`);
    else objects.push([name, r.template.variables?.[name]]);
  }
  for (const [name, value] of objects) {
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`${r.module}: ${name} is not an object of settings`);
      continue;
    }
    for (const [k, v] of Object.entries(value)) {
      names.add(k);
      if (v && typeof v === 'object') problems.push(`${r.module}: app setting ${k} is an object`);
    }
  }
  return { names, problems };
}

function settingsProblems(t: ArmTemplate, configSource: string): string[] {
  const code = codeSettingNames(configSource);
  const infra = infraSettingNames(t);
  const problems = [...code.problems, ...infra.problems];
  for (const name of code.names) {
    if (!infra.names.has(name) && !(name in OPTIONAL_IN_INFRA)) {
      problems.push(
        `setting ${name} is read by the code but neither set by the infra nor listed as optional`,
      );
    }
  }
  for (const name of infra.names) {
    if (!code.names.has(name) && !(name in HOST_RUNTIME_SETTINGS)) {
      problems.push(`app setting ${name} is set by the infra but read by nothing`);
    }
    if (FLEX_FORBIDDEN_SETTINGS.some((f) => f.toLowerCase() === name.toLowerCase()))
      problems.push(`app setting ${name} is not allowed on Flex Consumption`);
  }
  for (const name of Object.keys(OPTIONAL_IN_INFRA)) {
    if (!code.names.has(name)) problems.push(`optional setting ${name} is no longer read by the code`);
    if (infra.names.has(name)) problems.push(`setting ${name} is listed as optional but the infra sets it`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// (b) structure

/** Resource types without a 2023+ GA api-version, and why. */
const OLD_API_EXCEPTIONS: Record<string, string> = {
  'Microsoft.Insights/components': '2020-02-02 is the newest GA api-version',
  'Microsoft.Authorization/roleAssignments': '2022-04-01 is the newest GA api-version',
  'Microsoft.Authorization/roleDefinitions': '2022-04-01 is the newest GA api-version',
};

const REQUIRED_OUTPUTS = ['AZURE_LOCATION', 'AZURE_TENANT_ID', 'AZURE_RESOURCE_GROUP', 'FUNCTION_APP_URL'];
const OUTPUT_TYPES = new Set(['string', 'int', 'bool', 'object', 'array', 'securestring', 'secureObject']);
const SUBSCRIPTION_SCHEMA = /\/subscriptionDeploymentTemplate\.json#$/;
const GROUP_SCHEMA = /\/deploymentTemplate\.json#$/;

function apiVersionProblem(where: string, type: string, version: string | undefined): string | undefined {
  if (!version) return `${where}: ${type} has no api-version`;
  if (/preview/i.test(version)) return `${where}: ${type} uses a preview api-version`;
  if (version < '2023-01-01' && !(type in OLD_API_EXCEPTIONS))
    return `${where}: ${type}@${version} is older than 2023`;
  return undefined;
}

function structureProblems(t: ArmTemplate, parametersJson: string): string[] {
  const problems: string[] = [];
  // Subscription scope in main (azd creates the group), resource group in every module.
  if (!SUBSCRIPTION_SCHEMA.test(t.$schema)) problems.push('main: targetScope must be subscription');
  const rg = t.resources.find((r) => r.type === 'Microsoft.Resources/resourceGroups');
  if (!rg) problems.push('main: no resource group');
  for (const d of t.resources.filter((r) => r.type === 'Microsoft.Resources/deployments')) {
    if (d.resourceGroup === undefined || d.resourceGroup !== rg?.name)
      problems.push(`main: module ${d.name} must deploy into the resource group (scope: rg)`);
  }
  for (const { module, template } of templates(t)) {
    if (module !== 'main' && !GROUP_SCHEMA.test(template.$schema))
      problems.push(`${module}: modules deploy to a resource group`);
    // Outputs: typed, no secrets.
    for (const [name, o] of Object.entries(template.outputs ?? {})) {
      if (!OUTPUT_TYPES.has(o.type)) problems.push(`${module}: output ${name} has type '${o.type}'`);
      if (strings(o.value).some((s) => /\blist\w*\(/.test(s)))
        problems.push(`${module}: output ${name} exposes a list*() result`);
    }
    // Api-versions: of every resource, and of every existing resource read with reference().
    for (const r of template.resources) {
      const p = apiVersionProblem(module, r.type, r.apiVersion);
      if (p) problems.push(p);
    }
    for (const s of strings(template)) {
      for (const m of s.matchAll(/reference\(resourceId\('([^']+)'.*?\),\s*'(\d{4}-\d{2}-\d{2}[^']*)'\)/g)) {
        const p = apiVersionProblem(module, m[1]!, m[2]);
        if (p) problems.push(p);
      }
    }
  }
  for (const o of REQUIRED_OUTPUTS) if (!(o in (t.outputs ?? {}))) problems.push(`main: output ${o} missing`);

  // main.parameters.json against main.bicep's parameters.
  const json = JSON.parse(parametersJson) as { parameters?: Record<string, { value?: unknown }> };
  const declared = t.parameters ?? {};
  for (const [k, v] of Object.entries(json.parameters ?? {})) {
    if (!(k in declared)) problems.push(`main.parameters.json: ${k} is not a param of main.bicep`);
    if (typeof v.value !== 'string' || !/^(?:\$\{[A-Z][A-Z0-9_]*\}|[^$]*)$/.test(v.value)) {
      problems.push(`main.parameters.json: ${k} should be a literal or one \${AZD_VARIABLE}`);
    }
  }
  for (const [k, p] of Object.entries(declared)) {
    const required = p.defaultValue === undefined && !p.nullable;
    if (required && !(k in (json.parameters ?? {})))
      problems.push(`main.parameters.json: required ${k} missing`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// (c) keys, identity, the plan

/** The location list: Flex Consumption regions only (see main.bicep), no canary regions. */
function locationProblems(t: ArmTemplate): string[] {
  const allowed = t.parameters?.location?.allowedValues;
  if (!allowed || allowed.length === 0)
    return ['main: location must be restricted (@allowed) to Flex regions'];
  const problems: string[] = [];
  for (const l of allowed) {
    if (typeof l !== 'string' || !/^[a-z]+[a-z0-9]*$/.test(l))
      problems.push(`main: '${String(l)}' is not a region name`);
    else if (/euap$/.test(l)) problems.push(`main: ${l} is a canary region`);
  }
  if (new Set(allowed).size !== allowed.length) problems.push('main: a region is listed twice');
  return problems;
}

function securityProblems(t: ArmTemplate): string[] {
  const problems: string[] = [];
  const all = resources(t);
  for (const s of strings(t)) {
    const fn = /\b(list(?:Keys|AccountSas|ServiceSas|Secrets))\(/.exec(s);
    if (fn) problems.push(`${fn[1]}() puts a secret into the deployment`);
    if (/AccountKey=|SharedAccessSignature=|sig=/i.test(s))
      problems.push(`a key or SAS in a string: ${s.slice(0, 60)}`);
  }
  const accounts = all.filter((r) => r.type === 'Microsoft.Storage/storageAccounts');
  const host = accounts.find((r) => r.module === 'hostStorage');
  if (!host) problems.push('no storage account in module hostStorage');
  else if (at(host.properties, 'allowSharedKeyAccess') !== false)
    problems.push('hostStorage: the host account must set allowSharedKeyAccess: false');
  for (const a of accounts) {
    if (at(a.properties, 'allowBlobPublicAccess') !== false)
      problems.push(`${a.module}: account allows public blobs`);
    if (at(a.properties, 'minimumTlsVersion') !== 'TLS1_2')
      problems.push(`${a.module}: account accepts TLS < 1.2`);
    // An account that keeps shared keys must say why (the gallery's listKeys rule).
    if (at(a.properties, 'allowSharedKeyAccess') !== false && !a.metadata?.description?.includes('listKeys'))
      problems.push(
        `${a.module}: account allows shared keys without the reason (listKeys) in its description`,
      );
  }
  const sites = all.filter((r) => r.type === 'Microsoft.Web/sites');
  if (sites.length !== 1) problems.push(`expected one Microsoft.Web/sites, found ${sites.length}`);
  for (const site of sites) {
    const cfg = (...path: string[]) => at(site.properties, 'functionAppConfig', ...path);
    if (cfg('runtime', 'name') !== 'node') problems.push('runtime must be node');
    if (cfg('runtime', 'version') !== '22') problems.push('runtime must be Node 22');
    if (cfg('deployment', 'storage', 'authentication', 'type') !== 'UserAssignedIdentity')
      problems.push('deployment storage must authenticate with the user-assigned identity');
    const mem = resolve(cfg('scaleAndConcurrency', 'instanceMemoryMB'), site.template);
    if (!(Number(mem) >= 2048)) problems.push(`instanceMemoryMB must be at least 2048 (is ${String(mem)})`);
    const maxRef = cfg('scaleAndConcurrency', 'maximumInstanceCount');
    const maxName = typeof maxRef === 'string' ? /^\[parameters\('(\w+)'\)\]$/.exec(maxRef)?.[1] : undefined;
    const maxParam = maxName ? site.template.parameters?.[maxName] : undefined;
    const max = resolve(maxRef, site.template);
    // At least one instance per scale group (HTTP, mirrorWorker, mirrorPoison, mirrorSchedule), and
    // sized for a handful of concurrent transfers, not the 40+ the plan once required.
    if (!(Number(max) >= 4 && Number(max) <= 10))
      problems.push(`maximumInstanceCount should be 4-10 for this workload (is ${String(max)})`);
    if (maxParam && maxParam.minValue !== 1)
      problems.push('maximumInstanceCount: Flex accepts 1 as the minimum');
    if (at(site.identity, 'type') !== 'UserAssigned')
      problems.push('the app must run as its user-assigned identity');
    if (at(site.properties, 'siteConfig', 'appSettings') !== undefined)
      problems.push('app settings belong in the appsettings resource only');
    const origins = at(site.properties, 'siteConfig', 'cors', 'allowedOrigins');
    if (!Array.isArray(origins) || !origins.includes('https://portal.azure.com'))
      problems.push('CORS must admit https://portal.azure.com (the portal test pane)');
    for (const p of FLEX_FORBIDDEN_SITE_PROPERTIES) {
      if (at(site.properties, p) !== undefined || at(site.properties, 'siteConfig', p) !== undefined)
        problems.push(`site property ${p} is not allowed on Flex Consumption`);
    }
  }
  const plan = all.find((r) => r.type === 'Microsoft.Web/serverfarms');
  if (at(plan?.sku, 'tier') !== 'FlexConsumption') problems.push('plan must be FlexConsumption');
  const vault = all.find((r) => r.type === 'Microsoft.KeyVault/vaults');
  if (at(vault?.properties, 'enableRbacAuthorization') !== true) problems.push('Key Vault must use RBAC');
  const ai = all.find((r) => r.type === 'Microsoft.Insights/components');
  if (at(ai?.properties, 'DisableLocalAuth') !== true) problems.push('App Insights must disable local auth');
  return problems;
}

// ---------------------------------------------------------------------------------------------
// (d) roles

const BUILT_IN_ROLES: Record<string, string> = {
  'Storage Blob Data Owner': 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  'Storage Blob Data Contributor': 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
  'Storage Queue Data Contributor': '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  'Storage Table Data Contributor': '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  'Key Vault Secrets User': '4633458b-17de-408a-b874-0445c86b69e6',
  'Key Vault Secrets Officer': 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  'Monitoring Metrics Publisher': '3913510d-42f4-4e42-8a64-420c390055eb',
};

/** Broad roles that have no place in this deployment. */
const FORBIDDEN_ROLES: Record<string, string> = {
  Owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  Contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  'User Access Administrator': '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
  'Role Based Access Control Administrator': 'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
  'Storage Account Contributor': '17d1049b-9a84-46fb-8f53-869881c3d3ab',
};

/** The narrowest resource type each data role may be assigned on. */
const ROLE_SCOPE: Record<string, string> = {
  'Storage Queue Data Contributor': 'Microsoft.Storage/storageAccounts/queueServices/queues',
  'Storage Table Data Contributor': 'Microsoft.Storage/storageAccounts/tableServices/tables',
  'Storage Blob Data Contributor': 'Microsoft.Storage/storageAccounts/blobServices/containers',
};

/** Every action a custom role may hold, and what of the app uses it. */
const APP_ACTIONS: Record<string, string> = {
  'Microsoft.Compute/galleries/images/read': 'Gallery Images Get: does the image definition exist',
  'Microsoft.Compute/galleries/images/write': 'Gallery Images Create Or Update: the CPI-named definition',
  'Microsoft.Compute/galleries/images/versions/read': 'Gallery Image Versions Get and List By Gallery Image',
  'Microsoft.Compute/galleries/images/versions/write': 'Gallery Image Versions Create Or Update',
  'Microsoft.Compute/galleries/images/versions/delete': 'Gallery Image Versions Delete: retention',
  'Microsoft.Storage/storageAccounts/listKeys/action':
    'checked by Azure when a version names the VHD account as source',
};

const DOCS = /https:\/\/learn\.microsoft\.com\//;

function roleProblems(t: ArmTemplate): string[] {
  const problems: string[] = [];
  const all = resources(t);
  const custom = all.filter((r) => r.type === 'Microsoft.Authorization/roleDefinitions');
  for (const c of custom) {
    const where = `${c.module}: custom role ${String(at(c.properties, 'roleName'))}`;
    const actions = (at(c.properties, 'permissions') as { actions?: string[] }[] | undefined)?.flatMap(
      (p) => p.actions ?? [],
    );
    if (!actions || actions.length === 0 || actions.some((a) => a.includes('*')))
      problems.push(`${where} must list its actions without wildcards`);
    for (const a of actions ?? []) {
      if (!(a in APP_ACTIONS) && !a.includes('*'))
        problems.push(`${where} grants ${a}, which the app does not use`);
    }
    const scopes = at(c.properties, 'assignableScopes');
    if (JSON.stringify(scopes) !== JSON.stringify(['[resourceGroup().id]']))
      problems.push(`${where} must be assignable in this group only`);
    if (!DOCS.test(c.metadata?.description ?? ''))
      problems.push(`${where}: no Microsoft source in its description`);
  }
  const assignments = all.filter((r) => r.type === 'Microsoft.Authorization/roleAssignments');
  if (assignments.length === 0) problems.push('no role assignments found');
  for (const r of assignments) {
    const description = r.metadata?.description ?? '';
    const roleId = String(at(r.properties, 'roleDefinitionId'));
    const where = `${r.module}: assignment of ${roleId.slice(0, 90)}`;
    const named = Object.entries(BUILT_IN_ROLES).find(
      ([n, g]) => description.startsWith(n) && description.includes(g),
    );
    const own = custom.find((c) => roleId.includes(c.name.replace(/^\[|\]$/g, '')));
    if (named) {
      if (!roleId.includes(named[1]))
        problems.push(`${where}: description names ${named[0]} but the role id differs`);
      const narrowest = ROLE_SCOPE[named[0]];
      if (narrowest && !r.scope?.startsWith(`[resourceId('${narrowest}'`))
        problems.push(`${where}: ${named[0]} belongs on one ${narrowest.split('/').at(-1)}, not wider`);
    } else if (own) {
      // `[format('Stemcell mirror … ({0})', uniqueString(…))]`: the name without its suffix.
      const roleName = String(at(own.properties, 'roleName'))
        .replace(/^\[format\('/, '')
        .replace(/ \(.*$/, '');
      if (!/^custom role/i.test(description) || !description.includes(roleName))
        problems.push(`${where}: description must name the custom role "${roleName}"`);
    } else {
      problems.push(`${where}: no description naming the role and its GUID`);
    }
    if (!DOCS.test(description)) problems.push(`${where}: no Microsoft source in its description`);
    for (const [n, g] of Object.entries(FORBIDDEN_ROLES)) {
      if (roleId.includes(g)) problems.push(`${where}: ${n} is far broader than needed`);
    }
    const scopeType = /^\[resourceId\('([^']+)'/.exec(r.scope ?? '')?.[1];
    if (!scopeType || scopeType.startsWith('Microsoft.Authorization/'))
      problems.push(`${where}: needs scope: <the one resource it applies to>`);
    if (!r.name.startsWith('[guid(')) problems.push(`${where}: name must be a deterministic guid(...)`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Mutations of the compiled template

type Mutable = ArmTemplate;

/** A deep copy of the template with `change` applied to it; fails loudly if nothing changed. */
function mutate(t: ArmTemplate, change: (copy: Mutable) => void): ArmTemplate {
  const copy = structuredClone(t);
  change(copy);
  if (JSON.stringify(copy) === JSON.stringify(t)) throw new Error('mutation changed nothing');
  return copy;
}

function moduleOf(t: ArmTemplate, name: string): ArmTemplate {
  const found = templates(t).find((l: Located) => l.module === name);
  if (!found) throw new Error(`no module ${name}`);
  return found.template;
}

function resourceOf(t: ArmTemplate, module: string, pick: (r: ArmResource) => boolean): ArmResource {
  const r = moduleOf(t, module).resources.find(pick);
  if (!r) throw new Error(`no such resource in ${module}`);
  return r;
}

const byType = (type: string) => (r: ArmResource) => r.type === type;
const withDescription = (start: string) => (r: ArmResource) =>
  r.metadata?.description?.startsWith(start) === true;

// ---------------------------------------------------------------------------------------------

const bicep = findBicep();
const CI = ['1', 'true'].includes(String(process.env.CI).toLowerCase());
const bin = 'bin' in bicep ? bicep.bin : undefined;
if (!bin) {
  console.warn(
    `\nSKIPPED: the Bicep compile checks of infra/ did not run. ${'missing' in bicep ? bicep.missing : ''}\n`,
  );
}

describe('the Bicep compiler', () => {
  it.runIf(!bin && CI)('is there in CI (CI=true): a missing compiler fails', () => {
    expect.fail(`no Bicep compiler: ${'missing' in bicep ? bicep.missing : ''}`);
  });
  it.runIf(!!bin)('restores from NuGet and reports its version', () => {
    expect(bin).toMatch(/azure\.bicep\.commandline\.linux-(?:x64|arm64)\/0\.49\.\d+\/tools\/bicep$/);
  });
});

describe.runIf(!!bin)('infra/, compiled by the Bicep CLI', () => {
  const compiled = bin ? build(bin) : undefined;
  const t = compiled?.template as ArmTemplate;
  const configSource = read(CONFIG_SOURCE);
  const parametersJson = read('infra/main.parameters.json');

  describe('compiler and linter', () => {
    it('build and lint print no diagnostic at all (warnings count as errors)', () => {
      expect(compiled!.diagnostics).toBe('');
      expect(lint(bin!, { file: join(ROOT, 'infra', 'main.bicep') })).toEqual([]);
    });

    it('catch an unused param, a missing module file, an unknown or missing module param, a typo in an output reference, unbalanced braces', () => {
      const found = lintMutations(bin!, {
        unusedParam: {
          file: 'infra/main.bicep',
          from: "param schedule string = ''",
          to: "param schedule string = ''\nparam unusedKnob string = ''",
        },
        missingModule: { file: 'infra/main.bicep', from: "'app/gallery.bicep'", to: "'app/galleries.bicep'" },
        unknownParam: {
          file: 'infra/main.bicep',
          from: 'keyVaultUri: vault.outputs.uri\n',
          to: 'keyVaultUri: vault.outputs.uri\n    vaultUrl: vault.outputs.uri\n',
        },
        lostParam: { file: 'infra/main.bicep', from: 'keyVaultUri: vault.outputs.uri\n', to: '' },
        outputTypo: {
          file: 'infra/main.bicep',
          from: 'galleryName: gallery.outputs.name\n    keyVaultUri',
          to: 'galleryName: gallery.outputs.nmae\n    keyVaultUri',
        },
        unbalanced: { file: 'infra/app/identity.bicep', from: 'tags: tags\n}', to: 'tags: tags\n' },
      });
      expect(found.unusedParam!.join('\n')).toMatch(
        /main\.bicep.*Warning no-unused-params: Parameter "unusedKnob"/,
      );
      expect(found.missingModule!.join('\n')).toMatch(/main\.bicep.*Error BCP091: .*galleries\.bicep/);
      expect(found.unknownParam!.join('\n')).toMatch(
        /main\.bicep.*Error BCP037: The property "vaultUrl" is not allowed/,
      );
      expect(found.lostParam!.join('\n')).toMatch(/main\.bicep.*Error BCP035: .*"keyVaultUri"/);
      expect(found.outputTypo!.join('\n')).toMatch(/main\.bicep.*Error BCP053: .*"nmae"/);
      expect(found.unbalanced!.join('\n')).toMatch(/identity\.bicep.*Error BCP/);
    });
  });

  describe('azure.yaml', () => {
    it('deploys one Node function service, the app the infra tags azd-service-name', () => {
      const y = parseYaml(read('azure.yaml')) as { services: Record<string, Record<string, unknown>> };
      const [name, svc] = Object.entries(y.services)[0]!;
      expect(Object.keys(y.services)).toHaveLength(1);
      expect(svc).toMatchObject({ host: 'function', language: 'ts', project: '.' });
      expect(strings(t).some((s) => s.includes(`'azd-service-name', '${name}'`))).toBe(true);
    });
  });

  describe('(a) app settings', () => {
    it('reads the setting names of config.ts, template-built ones expanded', () => {
      const { names, problems } = codeSettingNames(configSource);
      expect(problems).toEqual([]);
      expect(names).toContain('AzureWebJobsStorage__queueServiceUri');
      expect(names).not.toContain('CONFIG_INVALID');
    });

    it('finds exactly the settings loadConfig reads at run time', () => {
      // The text scan and the code must agree, or a setting could slip past the checks below.
      const seen = new Set<string>();
      const env = (values: Record<string, string>) =>
        new Proxy(values, {
          get: (target, key: string) => {
            seen.add(key);
            return target[key];
          },
        });
      loadConfig(env({}), 1800);
      loadConfig(
        env({
          AzureWebJobsStorage__accountName: 'sthost',
          AzureWebJobsStorage__clientId: '00000000-0000-0000-0000-000000000001',
          AZURE_SUBSCRIPTION_ID: '00000000-0000-0000-0000-000000000002',
          AZURE_RESOURCE_GROUP: 'rg-mirror',
          AZURE_REGION: 'westeurope',
          AZURE_GALLERY_NAME: 'galmirror',
          AZURE_STORAGE_ACCOUNT_NAME: 'stvhd',
          AZURE_KEY_VAULT_URL: 'https://kv-mirror.vault.azure.net/',
          BASM_NOTIFY_GITHUB_OWNER: 'owner',
          BASM_NOTIFY_GITHUB_REPO: 'repo',
          BASM_NOTIFY_GITHUB_WORKFLOW: 'stemcell.yml',
          BASM_NOTIFY_GITHUB_REF: 'main',
        }),
        1800,
      );
      const scanned = codeSettingNames(configSource).names;
      expect([...seen].filter((n) => typeof n === 'string').sort()).toEqual([...scanned].sort());
    });

    it('sets every setting the code reads, or lists it as optional with a reason; sets nothing unread or refused by Flex', () => {
      expect(settingsProblems(t, configSource)).toEqual([]);
      expect(infraSettingNames(t).names.size).toBeGreaterThan(20);
      for (const reason of [...Object.values(OPTIONAL_IN_INFRA), ...Object.values(HOST_RUNTIME_SETTINGS)]) {
        expect(reason.length).toBeGreaterThan(10);
      }
    });

    it('catches a setting renamed on either side, one dropped, and every setting Flex Consumption refuses', () => {
      const settings = (c: ArmTemplate, name: string) =>
        moduleOf(c, 'function').variables![name] as Record<string, unknown>;
      const renamed = mutate(t, (c) => {
        const m = settings(c, 'mirrorSettings');
        m.BASM_CRON = m.BASM_SCHEDULE;
        delete m.BASM_SCHEDULE;
      });
      const baseline = new Set(settingsProblems(t, configSource));
      expect(settingsProblems(renamed, configSource).filter((p) => !baseline.has(p))).toEqual([
        'setting BASM_SCHEDULE is read by the code but neither set by the infra nor listed as optional',
        'app setting BASM_CRON is set by the infra but read by nothing',
      ]);
      const renamedInCode = configSource.replace(/'AZURE_GALLERY_NAME'/g, "'AZURE_GALLERY'");
      expect(renamedInCode).not.toBe(configSource);
      expect(settingsProblems(t, renamedInCode)).toContain(
        'app setting AZURE_GALLERY_NAME is set by the infra but read by nothing',
      );
      const dropped = mutate(t, (c) => delete settings(c, 'notifySettings').BASM_NOTIFY_GITHUB_REF);
      expect(settingsProblems(dropped, configSource)).toContain(
        'setting BASM_NOTIFY_GITHUB_REF is read by the code but neither set by the infra nor listed as optional',
      );
      for (const name of FLEX_FORBIDDEN_SETTINGS) {
        const refused = mutate(t, (c) => (settings(c, 'hostSettings')[name] = 'x'));
        expect(settingsProblems(refused, configSource)).toContain(
          `app setting ${name} is not allowed on Flex Consumption`,
        );
      }
      const fromParam = mutate(t, (c) => {
        const r = resourceOf(c, 'function', isAppSettings);
        r.properties = "[union(variables('hostSettings'), parameters('extraSettings'))]" as unknown as Record<
          string,
          unknown
        >;
      });
      expect(settingsProblems(fromParam, configSource)).toContain(
        "function: app settings come from parameters('extraSettings'), not a variable of that template",
      );
    });
  });

  describe('resource names the app and the infra share', () => {
    it('names the request queue, its poison queue, the job table and the VHD container as the app does', () => {
      const v = t.variables ?? {};
      expect(v.requestQueueName).toBe(REQUEST_QUEUE);
      expect(`${String(v.requestQueueName)}-poison`).toBe(POISON_QUEUE);
      expect(v.jobsTableName).toBe(JOBS_TABLE);
      expect(v.vhdContainerName).toBe(loadConfig({}, 1800).container);
      // The host-storage module creates the request queue and the same name with -poison.
      const hostStorage = JSON.stringify(t.resources.find((r) => r.name === 'hostStorage'));
      expect(hostStorage).toContain("variables('requestQueueName')");
      expect(hostStorage).toContain('-poison');
    });
  });

  describe('(b) structure', () => {
    it('scopes, modules in the group, api-versions current, outputs sane, parameters file matching', () => {
      expect(structureProblems(t, parametersJson)).toEqual([]);
    });

    it('catches an old or preview api-version, a module outside the group, a secret output, a stray or missing parameter', () => {
      const old = mutate(
        t,
        (c) => (resourceOf(c, 'gallery', byType('Microsoft.Compute/galleries')).apiVersion = '2022-03-03'),
      );
      expect(structureProblems(old, parametersJson)).toContain(
        'gallery: Microsoft.Compute/galleries@2022-03-03 is older than 2023',
      );
      const preview = mutate(
        t,
        (c) =>
          (resourceOf(c, 'keyvault', byType('Microsoft.KeyVault/vaults')).apiVersion = '2024-12-01-preview'),
      );
      expect(structureProblems(preview, parametersJson)).toContain(
        'keyvault: Microsoft.KeyVault/vaults uses a preview api-version',
      );
      const oldExisting = mutate(t, (c) => {
        const outputs = moduleOf(c, 'hostStorage').outputs!;
        outputs.blobEndpoint!.value = String(outputs.blobEndpoint!.value).replace(
          "'2023-05-01'",
          "'2021-09-01'",
        );
      });
      expect(structureProblems(oldExisting, parametersJson)).toContain(
        'hostStorage: Microsoft.Storage/storageAccounts@2021-09-01 is older than 2023',
      );
      const outside = mutate(t, (c) => delete c.resources.find((r) => r.name === 'gallery')!.resourceGroup);
      expect(structureProblems(outside, parametersJson)).toContain(
        'main: module gallery must deploy into the resource group (scope: rg)',
      );
      const secret = mutate(t, (c) => {
        moduleOf(c, 'vhdStorage').outputs!.key = {
          type: 'string',
          value: "[listKeys(parameters('name'), '2023-05-01').keys[0].value]",
        };
      });
      expect(structureProblems(secret, parametersJson)).toContain(
        'vhdStorage: output key exposes a list*() result',
      );
      const lostOutput = mutate(t, (c) => delete c.outputs!.FUNCTION_APP_URL);
      expect(structureProblems(lostOutput, parametersJson)).toContain(
        'main: output FUNCTION_APP_URL missing',
      );
      const badParam = parametersJson.replace('"schedule"', '"cron"');
      expect(structureProblems(t, badParam)).toContain(
        'main.parameters.json: cron is not a param of main.bicep',
      );
      const required = mutate(t, (c) => delete c.parameters!.principalId!.defaultValue);
      const params = JSON.parse(parametersJson) as { parameters: Record<string, unknown> };
      delete params.parameters.principalId;
      const noPrincipal = JSON.stringify(params);
      expect(structureProblems(required, noPrincipal)).toContain(
        'main.parameters.json: required principalId missing',
      );
    });
  });

  describe('(c) identity, no keys, the plan', () => {
    it('the host account refuses shared keys; nothing carries a key; runtime, scale, CORS and plan as required; location restricted', () => {
      expect(securityProblems(t)).toEqual([]);
      expect(locationProblems(t)).toEqual([]);
      expect(t.parameters!.location!.allowedValues).toEqual(
        expect.arrayContaining(['westeurope', 'eastus', 'northeurope']),
      );
    });

    it('catches shared keys, a listKeys() and an AccountKey in a setting, Node 20, small instances, 40 instances, no CORS, a deprecated site property, any location', () => {
      const site = (c: ArmTemplate) => resourceOf(c, 'function', byType('Microsoft.Web/sites'));
      const hostKeys = mutate(
        t,
        (c) =>
          (resourceOf(
            c,
            'hostStorage',
            byType('Microsoft.Storage/storageAccounts'),
          ).properties!.allowSharedKeyAccess = true),
      );
      expect(securityProblems(hostKeys)).toContain(
        'hostStorage: the host account must set allowSharedKeyAccess: false',
      );
      const undocumented = mutate(
        t,
        (c) => delete resourceOf(c, 'vhdStorage', byType('Microsoft.Storage/storageAccounts')).metadata,
      );
      expect(securityProblems(undocumented)).toContain(
        'vhdStorage: account allows shared keys without the reason (listKeys) in its description',
      );
      const withKey = mutate(t, (c) => {
        (moduleOf(c, 'function').variables!.hostSettings as Record<string, string>).AzureWebJobsStorage =
          "[format('DefaultEndpointsProtocol=https;AccountName=x;AccountKey={0}', listKeys(parameters('vhdStorageId'), '2023-05-01').keys[0].value)]";
      });
      const problems = securityProblems(withKey).join('\n');
      expect(problems).toMatch(/listKeys\(\) puts a secret/);
      expect(problems).toMatch(/a key or SAS in a string/);
      const node20 = mutate(
        t,
        (c) =>
          ((site(c).properties!.functionAppConfig as { runtime: { version: string } }).runtime.version =
            '20'),
      );
      expect(securityProblems(node20)).toContain('runtime must be Node 22');
      const small = mutate(
        t,
        (c) => (moduleOf(c, 'function').parameters!.instanceMemoryMB!.defaultValue = 512),
      );
      expect(securityProblems(small)).toContain('instanceMemoryMB must be at least 2048 (is 512)');
      const oversized = mutate(
        t,
        (c) => (moduleOf(c, 'function').parameters!.maximumInstanceCount!.defaultValue = 40),
      );
      expect(securityProblems(oversized)).toContain(
        'maximumInstanceCount should be 4-10 for this workload (is 40)',
      );
      const oldMinimum = mutate(
        t,
        (c) => (moduleOf(c, 'function').parameters!.maximumInstanceCount!.minValue = 40),
      );
      expect(securityProblems(oldMinimum)).toContain('maximumInstanceCount: Flex accepts 1 as the minimum');
      const noCors = mutate(
        t,
        (c) => delete (site(c).properties!.siteConfig as Record<string, unknown>).cors,
      );
      expect(securityProblems(noCors)).toContain(
        'CORS must admit https://portal.azure.com (the portal test pane)',
      );
      for (const p of FLEX_FORBIDDEN_SITE_PROPERTIES) {
        const deprecated = mutate(
          t,
          (c) => ((site(c).properties!.siteConfig as Record<string, unknown>)[p] = 'x'),
        );
        expect(securityProblems(deprecated)).toContain(
          `site property ${p} is not allowed on Flex Consumption`,
        );
      }
      const anywhere = mutate(t, (c) => delete c.parameters!.location!.allowedValues);
      expect(locationProblems(anywhere)).toEqual([
        'main: location must be restricted (@allowed) to Flex regions',
      ]);
      const canary = mutate(t, (c) => c.parameters!.location!.allowedValues!.push('eastus2euap'));
      expect(locationProblems(canary)).toEqual(['main: eastus2euap is a canary region']);
    });
  });

  describe('(d) roles', () => {
    it('each assignment justified by a Microsoft source, on one resource, as narrow as the data allows; custom roles hold only what the app uses', () => {
      expect(roleProblems(t)).toEqual([]);
      const actions = resources(t)
        .filter((r) => r.type === 'Microsoft.Authorization/roleDefinitions')
        .flatMap((r) =>
          (at(r.properties, 'permissions') as { actions: string[] }[]).flatMap((p) => p.actions),
        );
      expect(actions).not.toContain('Microsoft.Storage/storageAccounts/write');
      expect(actions).not.toContain('Microsoft.Compute/galleries/images/delete');
      expect(actions).toContain('Microsoft.Storage/storageAccounts/listKeys/action');
    });

    it('catches a missing source, a mismatched GUID, a broad role, an account-wide queue role, a group-wide scope, a wildcard, an unused action', () => {
      const rbac = (c: ArmTemplate, start: string) => resourceOf(c, 'rbac', withDescription(start));
      const customRole = (c: ArmTemplate, name: string) =>
        resourceOf(
          c,
          'rbac',
          (r) =>
            r.type === 'Microsoft.Authorization/roleDefinitions' &&
            String(at(r.properties, 'roleName')).includes(name),
        );
      const actionsOf = (r: ArmResource) =>
        (r.properties!.permissions as { actions: string[] }[])[0]!.actions;
      const unsourced = mutate(t, (c) => {
        const r = rbac(c, 'Monitoring Metrics Publisher');
        r.metadata!.description = r.metadata!.description!.replace(/ \(https:[^)]*\)/, '');
      });
      expect(roleProblems(unsourced).join('\n')).toMatch(/3913510d.*: no Microsoft source/);
      const undescribed = mutate(t, (c) => delete rbac(c, 'Monitoring Metrics Publisher').metadata);
      expect(roleProblems(undescribed).join('\n')).toMatch(/3913510d.*: no description naming the role/);
      const wrongGuid = mutate(t, (c) => {
        const r = rbac(c, 'Key Vault Secrets User');
        r.properties!.roleDefinitionId = String(r.properties!.roleDefinitionId).replace(
          '4633458b-17de-408a-b874-0445c86b69e6',
          'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
        );
      });
      expect(roleProblems(wrongGuid).join('\n')).toMatch(
        /description names Key Vault Secrets User but the role id differs/,
      );
      const broad = mutate(t, (c) => {
        const r = rbac(c, 'Monitoring Metrics Publisher');
        r.properties!.roleDefinitionId = String(r.properties!.roleDefinitionId).replace(
          '3913510d-42f4-4e42-8a64-420c390055eb',
          'b24988ac-6180-42a0-ab88-20f7382dd24c',
        );
      });
      expect(roleProblems(broad).join('\n')).toMatch(/Contributor is far broader/);
      // A data role on the whole account instead of the one queue or table it is for.
      for (const [role, kind] of [
        ['Storage Queue Data Contributor', 'queues'],
        ['Storage Table Data Contributor', 'tables'],
      ] as const) {
        const accountWide = mutate(
          t,
          (c) =>
            (rbac(c, role).scope =
              "[resourceId('Microsoft.Storage/storageAccounts', parameters('hostStorageName'))]"),
        );
        expect(roleProblems(accountWide).join('\n')).toMatch(
          new RegExp(`${role} belongs on one ${kind}, not wider`),
        );
      }
      const wide = mutate(
        t,
        (c) => delete rbac(c, 'Custom role Stemcell mirror gallery image publisher').scope,
      );
      expect(roleProblems(wide).join('\n')).toMatch(/needs scope: <the one resource/);
      const wildcard = mutate(
        t,
        (c) => (actionsOf(customRole(c, 'image publisher'))[1] = 'Microsoft.Compute/*'),
      );
      expect(roleProblems(wildcard).join('\n')).toMatch(
        /image publisher.* must list its actions without wildcards/,
      );
      const write = mutate(t, (c) =>
        actionsOf(customRole(c, 'VHD source')).push('Microsoft.Storage/storageAccounts/write'),
      );
      expect(roleProblems(write).join('\n')).toMatch(
        /VHD source.* grants Microsoft\.Storage\/storageAccounts\/write, which the app does not use/,
      );
      const deleteDefinitions = mutate(t, (c) =>
        actionsOf(customRole(c, 'image publisher')).push('Microsoft.Compute/galleries/images/delete'),
      );
      expect(roleProblems(deleteDefinitions).join('\n')).toMatch(
        /grants Microsoft\.Compute\/galleries\/images\/delete, which the app does not use/,
      );
      const groupWide = mutate(
        t,
        (c) => (customRole(c, 'VHD source').properties!.assignableScopes = ['[subscription().id]']),
      );
      expect(roleProblems(groupWide).join('\n')).toMatch(/must be assignable in this group only/);
    });
  });
});

describe('README.md and teardown', () => {
  const doc = read('README.md');

  it('explains every azd variable main.parameters.json reads', () => {
    const json = read('infra/main.parameters.json');
    const vars = [...json.matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]!);
    const azdOwn = ['AZURE_ENV_NAME', 'AZURE_LOCATION', 'AZURE_PRINCIPAL_ID'];
    expect(vars.filter((v) => !azdOwn.includes(v)).filter((v) => !doc.includes(v))).toEqual([]);
    expect(doc).toContain('github-token');
  });

  it('deletes the custom roles after azd down, at subscription scope, by the name rbac.bicep gives them', () => {
    const y = parseYaml(read('azure.yaml')) as { hooks?: { postdown?: { posix?: { run?: string } } } };
    const script = y.hooks?.postdown?.posix?.run ?? '';
    expect(script).toBe('./scripts/delete-custom-roles.sh');
    accessSync(join(ROOT, script), constants.X_OK);
    const text = read(script);
    const prefixes = [...read('infra/app/rbac.bicep').matchAll(/roleName: '([^(']+?) \(/g)].map((m) => m[1]!);
    expect(prefixes).toHaveLength(2);
    for (const p of prefixes) expect(p.startsWith('Stemcell mirror ')).toBe(true);
    expect(text).toContain("starts_with(roleName, 'Stemcell mirror ')");
    expect(text).toContain('--scope "$subscription"');
    expect(doc).toContain('scripts/delete-custom-roles.sh');
  });
});
