'use strict';

// The params of serverless.yml that osls cannot check or derive by itself: the Lambda runtime and
// the architecture, from which the Python wheels are chosen (custom.pythonRequirements). Each is
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

module.exports = {
  runtime,
  architecture,
  // "3.14" for python3.14: pip's --python-version
  pythonVersion: async (resolver) => (await runtime(resolver)).slice('python'.length),
  // the interpreter pip runs under, which also compiles the bytecode: the runtime's own, unless
  // PYTHON_REQUIREMENTS_BIN names another
  pythonBin: async (resolver) => process.env.PYTHON_REQUIREMENTS_BIN || (await runtime(resolver)),
  // x86_64 or aarch64: the machine of the manylinux wheels pip may choose
  wheelMachine: async (resolver) => WHEEL_MACHINES[await architecture(resolver)],
};
