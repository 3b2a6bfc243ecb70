'use strict';

// The params of serverless.yml that osls cannot check or derive by itself: the Lambda runtime and
// the architecture, from which the Python wheels are chosen (custom.pythonRequirements), and
// SnapStart with what it changes for the predict function (PRELOAD_MODEL, the warm-up). Each is
// read as ${file(./serverless_ml/bundles/lambda_settings.js):NAME}; a value that is not allowed
// fails `sls package` / `sls deploy` with a message naming the param, what was given and what is
// allowed, before anything is built.
//
// The runtimes are the Lambda runtimes `serverless-ml package --provider aws` builds for
// (serverless_ml/bundles/providers.py, LAMBDA_PYTHON_VERSIONS), on Amazon Linux 2023: python3.11
// runs on Amazon Linux 2, whose glibc 2.26 has no wheels of current NumPy.

const RUNTIMES = ['python3.12', 'python3.13', 'python3.14'];
// Lambda's architecture names -> the manylinux wheels' machine names
const WHEEL_MACHINES = { x86_64: 'x86_64', arm64: 'aarch64' };

function fail(message) {
  const error = new Error(message);
  error.stack = error.message; // osls prints the stack: the message is all there is to say
  return error;
}

async function param(resolveVariable, name) {
  return String((await resolveVariable(`param:${name}`)) ?? '').trim();
}

async function runtime({ resolveVariable }) {
  const value = await param(resolveVariable, 'runtime');
  if (!RUNTIMES.includes(value)) {
    throw fail(
      `runtime=${value} is not allowed; expected one of ${RUNTIMES.join(', ')} ` +
        '(Lambda runtimes on Amazon Linux 2023; python3.11 runs on Amazon Linux 2, which current NumPy wheels do not support)'
    );
  }
  return value;
}

async function architecture({ resolveVariable }) {
  const value = await param(resolveVariable, 'architecture');
  if (!Object.hasOwn(WHEEL_MACHINES, value)) {
    throw fail(`architecture=${value} is not allowed; expected x86_64 or arm64 (Graviton)`);
  }
  return value;
}

// as core reads a boolean setting (core/settings.py); empty: false
const TRUE_WORDS = ['true', '1', 'yes', 'on'];
const FALSE_WORDS = ['false', '0', 'no', 'off', ''];
// SnapStart restores a snapshot of at most this much /tmp
const SNAPSTART_MAX_EPHEMERAL_MB = 512;

async function flag(resolveVariable, name) {
  const value = await param(resolveVariable, name);
  if (TRUE_WORDS.includes(value.toLowerCase())) return true;
  if (FALSE_WORDS.includes(value.toLowerCase())) return false;
  throw fail(`${name}=${value} is not allowed; expected true or false (empty: false)`);
}

// SnapStart for predict: Lambda snapshots the instance after its init (with PRELOAD_MODEL=true the
// model is in memory) and starts new instances from the snapshot. It takes /tmp up to 512 MB and
// no provisioned concurrency (osls refuses that one itself).
async function snapStart({ resolveVariable }) {
  if (!(await flag(resolveVariable, 'snapStart'))) return false;
  const ephemeral = Number(await param(resolveVariable, 'predictEphemeralStorage'));
  if (ephemeral > SNAPSTART_MAX_EPHEMERAL_MB) {
    throw fail(
      `snapStart=true with predictEphemeralStorage=${ephemeral}: SnapStart allows at most ` +
        `${SNAPSTART_MAX_EPHEMERAL_MB} MB of /tmp; expected predictEphemeralStorage=${SNAPSTART_MAX_EPHEMERAL_MB} ` +
        '(a model that needs more /tmp cannot be snapshotted: deploy it without SnapStart)'
    );
  }
  // Lambda refuses both on a SnapStart function, at deploy; neither is a param here, but a user
  // may add them to functions.predict (osls would refuse provisioned concurrency itself, naming
  // neither snapStart param nor this file)
  for (const [key, what] of [
    ['fileSystemConfig', 'EFS file systems'],
    ['provisionedConcurrency', 'provisioned concurrency'],
  ]) {
    const value = await resolveVariable(`self:functions.predict.${key}, null`);
    if (value !== null && value !== undefined && value !== 0) {
      throw fail(
        `snapStart=true with functions.predict.${key} set: SnapStart does not support ${what}; ` +
          `expected no functions.predict.${key} (or snapStart=false)`
      );
    }
  }
  return true;
}

// warm-ups keep an instance and its model alive; with SnapStart a new instance starts from the
// snapshot with the model loaded, and the scheduled pings would only add invocations
async function predictWarmup(resolver) {
  return (await flag(resolver.resolveVariable, 'warmup')) && !(await snapStart(resolver));
}

// CodeDeploy's predefined traffic-shifting configurations for Lambda, without their
// "CodeDeployDefault.Lambda" prefix (serverless-plugin-canary-deployments adds it)
const DEPLOYMENT_PREFERENCES = [
  'Canary10Percent5Minutes',
  'Canary10Percent10Minutes',
  'Canary10Percent15Minutes',
  'Canary10Percent30Minutes',
  'Linear10PercentEvery1Minute',
  'Linear10PercentEvery2Minutes',
  'Linear10PercentEvery3Minutes',
  'Linear10PercentEvery10Minutes',
  'AllAtOnce',
];

// params.deploymentPreference: empty (no traffic shifting) or one of CodeDeploy's configurations.
// Provisioned concurrency would need its own alias (osls makes `provisioned`), which CodeDeploy
// would not shift: refused rather than served by an alias that never gets the new version.
async function deploymentPreference({ resolveVariable }) {
  const value = await param(resolveVariable, 'deploymentPreference');
  if (value === '') return '';
  if (!DEPLOYMENT_PREFERENCES.includes(value)) {
    throw fail(
      `deploymentPreference=${value} is not allowed; expected one of ${DEPLOYMENT_PREFERENCES.join(', ')} ` +
        '(CodeDeploy configurations for Lambda), or empty for no traffic shifting'
    );
  }
  const provisioned = await resolveVariable('self:functions.predict.provisionedConcurrency, null');
  if (provisioned !== null && provisioned !== undefined && provisioned !== 0) {
    throw fail(
      `deploymentPreference=${value} with functions.predict.provisionedConcurrency set: provisioned ` +
        "concurrency lives on an alias of its own, which CodeDeploy's traffic shifting would not move; " +
        'expected no functions.predict.provisionedConcurrency (or deploymentPreference empty)'
    );
  }
  return value;
}

// a share of requests, invocations or rows above which an alarm rolls a deployment back
async function percent(resolveVariable, name) {
  const text = await param(resolveVariable, name);
  const value = Number(text);
  if (text === '' || !Number.isFinite(value) || value <= 0 || value > 100) {
    throw fail(`${name}=${text} is not allowed; expected a percentage above 0 and at most 100, e.g. 5`);
  }
  return value;
}

// as aws_lambda/metrics.py checks METRICS_NAMESPACE; empty: its default
const DEFAULT_METRICS_NAMESPACE = 'serverless-ml';
const METRICS_NAMESPACE = /^[0-9A-Za-z.\-_/#: ]{1,255}$/;

async function metricsNamespace({ resolveVariable }) {
  const value = await param(resolveVariable, 'metricsNamespace');
  if (value === '') return DEFAULT_METRICS_NAMESPACE;
  if (!METRICS_NAMESPACE.test(value) || value.startsWith('AWS/')) {
    throw fail(
      `metricsNamespace=${value} is not allowed; expected 1-255 characters of letters, digits, ` +
        "'.', '-', '_', '/', '#', ':' or space, not starting with 'AWS/'"
    );
  }
  return value;
}

// A candidate model beside the primary (README, "Model rollout"), in the model's bucket:
// CANDIDATE_MODEL_URI from params.candidateModelKey, empty without one. Its other settings without
// a key would fail every init of the functions (core refuses them), so they fail the package here.
const CANDIDATE_PARAMS = ['candidateModelSha256', 'candidateMode', 'candidatePercent'];

async function candidateModelKey(resolveVariable) {
  const key = await param(resolveVariable, 'candidateModelKey');
  if (key === '') {
    for (const name of CANDIDATE_PARAMS) {
      const value = await param(resolveVariable, name);
      if (value !== '') {
        throw fail(
          `${name}=${value} is set but candidateModelKey is not; expected the candidate model's key in ` +
            'modelBucket (e.g. models/model-v2.joblib), or no candidate params'
        );
      }
    }
    return '';
  }
  if (key === (await param(resolveVariable, 'modelKey'))) {
    throw fail(`candidateModelKey=${key} is the model itself (modelKey); expected another object to compare with it`);
  }
  return key;
}

// The S3 objects predict may read: the model, the candidate if any, and each one's optional
// manifest (core/model/manifest.py), as IAM resources.
async function modelObjects({ resolveVariable }) {
  const bucket = await param(resolveVariable, 'modelBucket');
  const keys = [await param(resolveVariable, 'modelKey')];
  const candidate = await candidateModelKey(resolveVariable);
  if (candidate) keys.push(candidate);
  return keys.flatMap((key) => [
    { 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${bucket}/${key}` },
    { 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${bucket}/${key}.manifest.json` },
  ]);
}

// params.fanOutMaxConcurrency: the parts the Distributed Map runs at once (Step Functions takes up
// to 10,000 child executions at a time; each is a Lambda invocation that counts against the
// account's concurrency)
async function fanOutMaxConcurrency({ resolveVariable }) {
  const text = await param(resolveVariable, 'fanOutMaxConcurrency');
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < 1 || value > 10000) {
    throw fail(`fanOutMaxConcurrency=${text} is not allowed; expected a whole number from 1 to 10000, e.g. 10`);
  }
  return value;
}

module.exports = {
  runtime,
  // "true" or "false": whether the fan-out state machine and its three step functions are
  // deployed (params.fanOut; serverless_ml/bundles/fan_out.js)
  fanOut: async ({ resolveVariable }) => String(await flag(resolveVariable, 'fanOut')),
  fanOutMaxConcurrency,
  architecture,
  snapStart,
  predictWarmup,
  // "true" or "false": whether the warm-up plugin creates its warmer (custom.stackExtensions)
  warmerExists: async (resolver) => String(await predictWarmup(resolver)),
  // PRELOAD_MODEL of predict: forced true with SnapStart, so that the snapshot holds the model
  predictPreloadModel: async (resolver) =>
    (await snapStart(resolver)) ? 'true' : await param(resolver.resolveVariable, 'preloadModel'),
  // "3.14" for python3.14: pip's --python-version
  pythonVersion: async (resolver) => (await runtime(resolver)).slice('python'.length),
  // the interpreter pip runs under, which also compiles the bytecode: the runtime's own, unless
  // PYTHON_REQUIREMENTS_BIN names another
  pythonBin: async (resolver) => process.env.PYTHON_REQUIREMENTS_BIN || (await runtime(resolver)),
  // x86_64 or aarch64: the machine of the manylinux wheels pip may choose
  wheelMachine: async (resolver) => WHEEL_MACHINES[await architecture(resolver)],
  deploymentPreference,
  // predict's role (batch reads the model alone)
  modelObjects,
  // CANDIDATE_MODEL_URI: s3://<modelBucket>/<candidateModelKey>, or empty
  candidateModelUri: async ({ resolveVariable }) => {
    const key = await candidateModelKey(resolveVariable);
    return key ? `s3://${await param(resolveVariable, 'modelBucket')}/${key}` : '';
  },
  // the qualifier the warm-up pings: with traffic shifting the alias the HTTP API invokes (its
  // versions are the ones that serve), else none ($LATEST, which the HTTP API invokes then)
  predictWarmupAlias: async (resolver) =>
    (await deploymentPreference(resolver)) ? String(await resolver.resolveVariable('self:custom.trafficShifting.alias')) : '',
  rollbackErrorPercent: async ({ resolveVariable }) => percent(resolveVariable, 'rollbackErrorPercent'),
  rollbackDisagreementPercent: async ({ resolveVariable }) => percent(resolveVariable, 'rollbackDisagreementPercent'),
  metricsNamespace,
};
