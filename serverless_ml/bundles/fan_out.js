'use strict';

// The batch fan-out on Step Functions (params.fanOut; aws_lambda/fanout.py), deployed only when the
// param is true: with it off (the default) nothing here touches the service, and the stack is the
// same as without this plugin.
//
// With it on, from custom.fanOut (serverless.yml):
// - the three step functions (fanoutPlan, fanoutPart, fanoutMerge: aws_lambda.handler.fanout_*)
//   join `functions`, on the role FanOutStepsRole;
// - the state machine joins `stepFunctions.stateMachines` for serverless-step-functions, its
//   definition read from infra/aws/fanout.asl.json.tftpl (the one Terraform's templatefile reads:
//   the two deployments cannot drift), each ${..._function_arn} replaced by the step function's
//   ARN and ${max_concurrency} by params.fanOutMaxConcurrency;
// - its roles and log group (custom.fanOut.resources) and checkov's reasons
//   (custom.fanOut.extensions) join the resources;
// - the batch function gets BATCH_FANOUT_STATE_MACHINE_ARN (the state machine's Ref, its ARN)
//   and its role states:StartExecution on that state machine alone;
// - the input bucket's lifecycle removes the parts of runs that never merged.
//
// Added after serverless-step-functions has read stepFunctions (package:initialize) and before
// anything is compiled (package:compileFunctions), so each plugin sees them as if written by hand.

const fs = require('fs');
const path = require('path');

const TEMPLATE = path.join('infra', 'aws', 'fanout.asl.json.tftpl');
const STEPS = { plan_function_arn: 'fanoutPlan', part_function_arn: 'fanoutPart', merge_function_arn: 'fanoutMerge' };
const SETTING = 'BATCH_FANOUT_STATE_MACHINE_ARN';

function fail(message) {
  const error = new Error(`fan-out (serverless_ml/bundles/fan_out.js): ${message}`);
  error.stack = error.message;
  return error;
}

// The template with its placeholders put in: the same ${name} syntax as Terraform's templatefile.
// A function's ARN replaces the whole quoted placeholder by a Ref object; a number its
// text. A placeholder this does not know fails the package, naming it.
function renderDefinition(text, values) {
  const rendered = text.replace(/"\$\{(\w+)\}"|\$\{(\w+)\}/g, (match, quoted, bare) => {
    const name = quoted || bare;
    if (!Object.hasOwn(values, name)) throw fail(`${TEMPLATE} has the placeholder \${${name}}, which this plugin does not fill`);
    return JSON.stringify(values[name]);
  });
  return JSON.parse(rendered);
}

class FanOut {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'after:package:initialize': () => this.add(),
    };
  }

  get settings() {
    return (this.serverless.service.custom || {}).fanOut || {};
  }

  get enabled() {
    return String(this.settings.enabled) === 'true';
  }

  add() {
    if (!this.enabled) return;
    const service = this.serverless.service;
    const naming = this.serverless.getProvider('aws').naming;
    const { functions, stateMachine, resources, extensions, maxConcurrency, partsLifecycleRule, batchEnvironment } = this.settings;
    const stage = this.serverless.getProvider('aws').getStage();

    for (const [key, definition] of Object.entries(functions || {})) {
      if (Object.hasOwn(service.functions, key)) throw fail(`functions.${key} exists already; custom.fanOut.functions would replace it`);
      service.functions[key] = { name: `${service.service}-${stage}-${key}`, events: [], ...definition };
    }
    for (const key of Object.values(STEPS)) {
      if (!service.functions[key]) throw fail(`custom.fanOut.functions has no ${key}; the definition invokes it`);
    }

    const values = { max_concurrency: Number(maxConcurrency) };
    for (const [placeholder, key] of Object.entries(STEPS)) {
      // a Ref, which serverless-step-functions turns into the function's ARN by name (a plain
      // Fn::Sub string), not into an Fn::Sub variables map, which moto's CloudFormation cannot read
      values[placeholder] = { Ref: naming.getLambdaLogicalId(key) };
    }
    const text = fs.readFileSync(path.join(this.serverless.serviceDir, TEMPLATE), 'utf8');
    const definition = renderDefinition(text, values);
    const machines = service.stepFunctions.stateMachines;
    if (Object.hasOwn(machines, 'batchFanOut')) throw fail('stepFunctions.stateMachines.batchFanOut exists already');
    machines.batchFanOut = { ...stateMachine, definition };

    service.resources = service.resources || {};
    service.resources.Resources = service.resources.Resources || {};
    for (const [name, resource] of Object.entries(resources || {})) {
      if (Object.hasOwn(service.resources.Resources, name)) throw fail(`resources.Resources.${name} exists already`);
      service.resources.Resources[name] = resource;
    }
    service.resources.extensions = { ...(service.resources.extensions || {}) };
    for (const [name, extension] of Object.entries(extensions || {})) {
      if (Object.hasOwn(service.resources.extensions, name)) throw fail(`resources.extensions.${name} exists already`);
      service.resources.extensions[name] = extension;
    }

    const machineRef = { Ref: stateMachine.id };
    const batch = service.functions.batch;
    batch.environment = { ...(batch.environment || {}), ...(batchEnvironment || {}), [SETTING]: machineRef };
    const batchRole = service.resources.Resources.BatchRole;
    batchRole.Properties.Policies[0].PolicyDocument.Statement.push({
      Effect: 'Allow',
      Action: 'states:StartExecution',
      Resource: machineRef,
    });

    const bucket = service.resources.extensions.S3BucketInputBucket;
    const rules = bucket && bucket.Properties && bucket.Properties.LifecycleConfiguration
      && bucket.Properties.LifecycleConfiguration.Rules;
    if (!Array.isArray(rules)) throw fail('resources.extensions.S3BucketInputBucket has no LifecycleConfiguration.Rules to add the parts rule to');
    service.resources.extensions.S3BucketInputBucket = {
      ...bucket,
      Properties: {
        ...bucket.Properties,
        LifecycleConfiguration: { ...bucket.Properties.LifecycleConfiguration, Rules: [...rules, partsLifecycleRule] },
      },
    };
  }
}

FanOut.renderDefinition = renderDefinition;
module.exports = FanOut;
