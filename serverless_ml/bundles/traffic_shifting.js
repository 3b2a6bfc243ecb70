'use strict';

// Gradual traffic shifting of the predict function, by CodeDeploy, when params.deploymentPreference
// is set (serverless.yml, custom.trafficShifting). serverless-plugin-canary-deployments does the
// CodeDeploy part for every function that has `deploymentSettings`; this plugin decides whether
// predict has them, and completes what the canary plugin leaves:
//
// - param empty: nothing at all; the stack is the same as without either plugin.
// - param set: predict gets deploymentSettings (type, alias, alarms), CodeDeploy the role of
//   custom.trafficShifting (least privilege, instead of the canary plugin's AWSLambda_FullAccess),
//   and custom.trafficShifting.resources (that role, the alarms) join the stack. The canary plugin
//   then adds the alias with its CodeDeploy update policy, the CodeDeploy application and
//   deployment group, and points the HTTP API's integration and permission at the alias.
// - param set with snapStart=true: osls has made an alias of its own (`snapstart`) for the HTTP
//   API to invoke. Two aliases of the same published versions would split what should be one
//   thing: only the shifted one may serve, or a deploy would reach all traffic through the other
//   at once. So osls' alias is removed, and what referred to it (the HTTP API's permission and
//   integration, their DependsOn) refers to the shifted alias; SnapStart itself is the function's
//   setting (ApplyOn: PublishedVersions) and snapshots every version that alias moves to.
//
// Any reference this cannot account for fails the package, naming it, rather than deploying an
// endpoint that invokes a version CodeDeploy does not move.

const FUNCTION = 'predict';

function fail(message) {
  const error = new Error(`traffic shifting (serverless_ml/bundles/traffic_shifting.js): ${message}`);
  error.stack = error.message;
  return error;
}

function isDeepEqual(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// every value of `node` equal to `from` replaced by `to` (in place), and how many were
function replaceDeep(node, from, to) {
  let count = 0;
  if (Array.isArray(node)) {
    node.forEach((item, index) => {
      if (isDeepEqual(item, from)) {
        node[index] = to;
        count += 1;
      } else count += replaceDeep(item, from, to);
    });
  } else if (node && typeof node === 'object') {
    for (const [key, item] of Object.entries(node)) {
      if (isDeepEqual(item, from)) {
        node[key] = to;
        count += 1;
      } else count += replaceDeep(item, from, to);
    }
  }
  return count;
}

class TrafficShifting {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      // before the resources are merged into the template and before the canary plugin (on
      // after:aws:package:finalize:mergeCustomProviderResources) looks for deploymentSettings
      'before:package:finalize': () => this.prepare(),
      // after the canary plugin, before the template is written
      'before:aws:package:finalize:saveServiceState': () => this.complete(),
    };
  }

  get settings() {
    const custom = this.serverless.service.custom || {};
    return custom.trafficShifting || {};
  }

  get enabled() {
    return Boolean(this.settings.type);
  }

  prepare() {
    if (!this.enabled) return;
    const { type, alias, alarms, codeDeployRole, resources } = this.settings;
    const service = this.serverless.service;
    const predict = service.getFunction(FUNCTION);
    if (predict.deploymentSettings) {
      throw fail(`functions.${FUNCTION}.deploymentSettings is set by hand; expected it unset (params.deploymentPreference sets it)`);
    }
    predict.deploymentSettings = { type, alias, alarms };
    // the canary plugin creates its own role unless the global settings name one
    service.custom.deploymentSettings = { ...(service.custom.deploymentSettings || {}), codeDeployRole };

    if (!service.resources) service.resources = {};
    if (!service.resources.Resources) service.resources.Resources = {};
    for (const [name, resource] of Object.entries(resources || {})) {
      if (Object.hasOwn(service.resources.Resources, name)) {
        throw fail(`resources.Resources.${name} exists already; custom.trafficShifting.resources would replace it`);
      }
      service.resources.Resources[name] = resource;
    }
  }

  complete() {
    if (!this.enabled) return;
    const template = this.serverless.service.provider.compiledCloudFormationTemplate;
    const resources = template.Resources;
    const naming = this.serverless.getProvider('aws').naming;
    const functionId = naming.getLambdaLogicalId(FUNCTION);
    const aliasName = this.settings.alias;

    const shifted = Object.keys(resources).filter(
      (id) =>
        resources[id].Type === 'AWS::Lambda::Alias' &&
        resources[id].UpdatePolicy &&
        resources[id].UpdatePolicy.CodeDeployLambdaAliasUpdate &&
        isDeepEqual(resources[id].Properties.FunctionName, { Ref: functionId })
    );
    if (shifted.length !== 1) {
      throw fail(`expected serverless-plugin-canary-deployments to add one alias of ${functionId} with a CodeDeploy update policy; found ${shifted.length}`);
    }
    const [aliasId] = shifted;
    if (resources[aliasId].Properties.Name !== aliasName) {
      throw fail(`the shifted alias is named ${resources[aliasId].Properties.Name}; expected ${aliasName}`);
    }

    // osls' own alias of predict (SnapStart's `snapstart`), which the HTTP API would invoke
    const target = this.serverless.service.getFunction(FUNCTION).targetAlias;
    if (target && resources[target.logicalId]) {
      const qualifiedArn = { 'Fn::Join': [':', [{ 'Fn::GetAtt': [functionId, 'Arn'] }, target.name]] };
      delete resources[target.logicalId];
      // the permission's FunctionName; the integration's URI the canary plugin rewrote already
      replaceDeep(resources, qualifiedArn, { Ref: aliasId });
      for (const resource of Object.values(resources)) {
        if (resource.DependsOn === target.logicalId) resource.DependsOn = aliasId;
        else if (Array.isArray(resource.DependsOn)) {
          resource.DependsOn = resource.DependsOn.map((id) => (id === target.logicalId ? aliasId : id));
        }
      }
      const left = JSON.stringify(template);
      if (left.includes(`"${target.logicalId}"`) || left.includes(`"${target.name}"`)) {
        throw fail(`the template still refers to osls' alias ${target.logicalId} (${target.name}) after merging it into ${aliasId}`);
      }
    }

    // What invokes predict from the outside must invoke the alias, never $LATEST.
    for (const [id, resource] of Object.entries(resources)) {
      if (resource.Type === 'AWS::ApiGatewayV2::Integration') {
        if (!JSON.stringify(resource.Properties.IntegrationUri).includes(`{"Ref":"${aliasId}"}`)) {
          throw fail(`${id} invokes ${JSON.stringify(resource.Properties.IntegrationUri)}; expected the alias ${aliasId}`);
        }
      }
      if (resource.Type === 'AWS::Lambda::Permission' && resource.Properties.Principal === 'apigateway.amazonaws.com') {
        if (!isDeepEqual(resource.Properties.FunctionName, { Ref: aliasId })) {
          throw fail(`${id} allows ${JSON.stringify(resource.Properties.FunctionName)}; expected the alias ${aliasId}`);
        }
      }
    }
  }
}

module.exports = TrafficShifting;
