'use strict';

// Loaded only by test_deploy_moto.py, into its own copy of serverless.yml, for a stack that refers
// to resources moto's CloudFormation has no model for. moto skips a resource of such a type, and
// a Ref or GetAtt to it then resolves to nothing: a resource it does model that names it (the HTTP
// API's Lambda::Permission on the traffic-shifting alias) fails to create, and the stack with it.
// So before the template is uploaded this removes every resource of the types in
// MOTO_UNMODELLED_TYPES (comma-separated) and every resource whose properties refer to one of
// them, however indirectly (a DependsOn on one is dropped, not the resource), and writes what it
// removed (logical id -> type) to MOTO_PRUNED_FILE. The test checks those in the packaged template
// instead and names them in a warning.

const fs = require('fs');

function refersTo(node, ids) {
  if (Array.isArray(node)) return node.some((item) => refersTo(item, ids));
  if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'Ref' && ids.has(value)) return true;
      if (key === 'Fn::GetAtt' && ids.has(Array.isArray(value) ? value[0] : String(value).split('.')[0])) return true;
      if (key === 'Fn::Sub') {
        const text = Array.isArray(value) ? value[0] : value;
        for (const id of ids) if (String(text).includes('${' + id + '}') || String(text).includes('${' + id + '.')) return true;
      }
      if (refersTo(value, ids)) return true;
    }
  }
  return false;
}

class PruneUnmodelledForMoto {
  constructor(serverless) {
    this.hooks = {
      'before:aws:deploy:deploy:uploadArtifacts': () => {
        const types = new Set((process.env.MOTO_UNMODELLED_TYPES || '').split(',').filter(Boolean));
        const resources = serverless.service.provider.compiledCloudFormationTemplate.Resources;
        const pruned = {};
        const ids = new Set(Object.keys(resources).filter((id) => types.has(resources[id].Type)));
        let grew = true;
        while (grew) {
          grew = false;
          for (const [id, resource] of Object.entries(resources)) {
            if (!ids.has(id) && refersTo(resource.Properties, ids)) {
              ids.add(id);
              grew = true;
            }
          }
        }
        for (const id of ids) {
          pruned[id] = resources[id].Type;
          delete resources[id];
        }
        // an order on a resource that is gone is no reference to it: only the order goes
        for (const resource of Object.values(resources)) {
          if (resource.DependsOn === undefined) continue;
          const kept = [].concat(resource.DependsOn).filter((id) => !ids.has(id));
          if (kept.length) resource.DependsOn = kept;
          else delete resource.DependsOn;
        }
        if (process.env.MOTO_PRUNED_FILE) fs.writeFileSync(process.env.MOTO_PRUNED_FILE, JSON.stringify(pruned));
      },
    };
  }
}

module.exports = PruneUnmodelledForMoto;
