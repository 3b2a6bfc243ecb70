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

module.exports = {
  runtime,
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
};
